// SPDX-License-Identifier: MIT
/*
 * Which patches root accepts: the signature policy (docs/host.md,
 * "Signed patches").  A policy is either the store's file STORE/policy,
 * read under the trust rules of trust.c like everything else root reads,
 * or the keys given to qpatch-load --verify.  It is checked on the bytes
 * that are then parsed, never on a file read again later.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host.h"
#include "qpatch/sign.h"

#define POLICY_MAX_FILE (64u << 10)

struct qp_policy {
	bool require;             /* refuse unsigned patches */
	struct qp_keyring *keys;  /* signed patches must verify with one of these */
	char source[PATH_MAX];    /* the policy file, or "--verify" */
};

static int policy_new(const char *source, struct qp_policy **out, struct qp_error *err)
{
	struct qp_policy *pol = calloc(1, sizeof(*pol));

	if (!pol)
		return qp_seterr(err, -ENOMEM, "out of memory");
	snprintf(pol->source, sizeof(pol->source), "%s", source);
	if (qp_keyring__new(&pol->keys, err)) {
		free(pol);
		return -ENOMEM;
	}
	*out = pol;
	return 0;
}

int qp_policy__from_keys(const char *const *paths, size_t n, struct qp_policy **out,
			 struct qp_error *err)
{
	struct qp_policy *pol;
	size_t i;
	int ret;

	*out = NULL;
	ret = policy_new("--verify", &pol, err);
	for (i = 0; !ret && i < n; i++)
		ret = qp_keyring__add_path(pol->keys, paths[i], qp_trust_read, err);
	if (ret) {
		qp_policy__free(pol);
		return ret;
	}
	pol->require = true;
	*out = pol;
	return 0;
}

/* One line of a policy file (comments and blanks already gone). */
static int policy_line(struct qp_policy *pol, const char *dir, char *line, unsigned lineno,
		       struct qp_error *err)
{
	char path[PATH_MAX * 2], *arg;

	arg = line + strcspn(line, " \t");
	if (*arg)
		*arg++ = '\0';
	arg += strspn(arg, " \t");
	if (!strcmp(line, "require-signature") && !*arg) {
		pol->require = true;
		return 0;
	}
	if (!strcmp(line, "trusted-key") && *arg) {
		if (arg[0] == '/')
			snprintf(path, sizeof(path), "%s", arg);
		else
			snprintf(path, sizeof(path), "%s/%s", dir, arg);
		return qp_keyring__add_path(pol->keys, path, qp_trust_read, err);
	}
	return qp_seterr(err, -EINVAL, "'%s' line %u: '%s' is not 'require-signature' or "
			 "'trusted-key PATH'", pol->source, lineno, line);
}

static int policy_parse(struct qp_policy *pol, const char *dir, char *text,
			struct qp_error *err)
{
	unsigned lineno = 0;
	char *line, *next, *end;
	int ret = 0;

	for (line = text; !ret && line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		if (strchr(line, '#'))
			*strchr(line, '#') = '\0';
		line += strspn(line, " \t\r");
		end = line + strlen(line);
		while (end > line && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (*line)
			ret = policy_line(pol, dir, line, lineno, err);
	}
	if (!ret && pol->require && !qp_keyring__count(pol->keys))
		ret = qp_seterr(err, -EINVAL, "'%s': require-signature without a trusted-key: no "
				"patch could be accepted", pol->source);
	return ret;
}

int qp_policy__load(const char *store_dir, struct qp_policy **out, struct qp_error *err)
{
	char path[PATH_MAX], *text;
	struct qp_policy *pol;
	struct stat st;
	uint8_t *buf;
	size_t len;
	int ret;

	*out = NULL;
	snprintf(path, sizeof(path), "%s/policy", store_dir);
	if (lstat(path, &st) && errno == ENOENT)
		return 0; /* no policy: any valid patch */
	ret = qp_trust_read(path, POLICY_MAX_FILE, &buf, &len, err);
	if (ret)
		return qp_preperr(err, ret, "policy refused");
	text = malloc(len + 1);
	if (!text) {
		free(buf);
		return qp_seterr(err, -ENOMEM, "out of memory");
	}
	memcpy(text, buf, len);
	text[len] = '\0';
	free(buf);
	if (strlen(text) != len)
		ret = qp_seterr(err, -EINVAL, "'%s': a NUL byte in a text file", path);
	if (!ret)
		ret = policy_new(path, &pol, err);
	if (!ret) {
		ret = policy_parse(pol, store_dir, text, err);
		if (ret)
			qp_policy__free(pol);
		else
			*out = pol;
	}
	free(text);
	return ret;
}

int qp_policy__check(const struct qp_policy *pol, const void *buf, size_t len,
		     const char *name, struct qp_error *err)
{
	int signed_ = qp_sig_find(buf, len, NULL, name, NULL);

	if (!pol || (!signed_ && !pol->require) || (signed_ && !qp_keyring__count(pol->keys)))
		return 0;
	if (qp_keyring__verify(pol->keys, buf, len, name, err))
		return pol->source[0] == '/' ?
		       qp_preperr(err, QP_ESIGNATURE, "refused by the policy '%s'", pol->source) :
		       QP_ESIGNATURE;
	return 0;
}

bool qp_policy__requires(const struct qp_policy *pol)
{
	return pol && pol->require;
}

int qp_policy__check_so(const struct qp_policy *pol, const char *name, struct qp_error *err)
{
	if (!qp_policy__requires(pol))
		return 0;
	return qp_seterr(err, QP_ESIGNATURE, "'%s': %s requires signed patches, and a hand-written "
			 ".so carries no signature", name,
			 pol->source[0] == '/' ? "the store's policy" : "--verify");
}

int qp_so_acceptable(const char *path, struct qp_error *err)
{
	struct qp_policy *pol = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret = qp_trust_read(path, QP_TRUST_MAX_PATCH, &buf, &len, err);

	free(buf);
	if (!ret)
		ret = qp_policy__load(qp_store_default_dir(), &pol, err);
	if (!ret)
		ret = qp_policy__check_so(pol, path, err);
	qp_policy__free(pol);
	return ret;
}

void qp_policy__free(struct qp_policy *pol)
{
	if (!pol)
		return;
	qp_keyring__free(pol->keys);
	free(pol);
}

struct qp_patch *qp_trust_open_checked(const char *path, const struct qp_policy *pol,
				       struct qp_error *err)
{
	struct qp_patch *p = NULL;
	uint8_t *buf;
	size_t len;

	if (qp_trust_read(path, QP_TRUST_MAX_PATCH, &buf, &len, err))
		return NULL;
	if (!qp_policy__check(pol, buf, len, path, err))
		p = qp_patch__open_named(buf, len, path, err);
	free(buf);
	return p;
}
