// SPDX-License-Identifier: MIT
/*
 * Undoing the last patch: the original bytes are put back with the target
 * stopped, then the mapping is removed once no thread uses it.
 */
#include <pthread.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ld.h"
#include "qpatch/decode.h"

/* Putting the original bytes back needs no thread out of the way: threads
 * in the patch finish it (phase 2 waits for them), the jump bytes hold one
 * instruction no thread can be inside; so does each call site, unless a
 * thread's pc says otherwise. */
static bool ld_undo_busy(struct ld_ctx *c, char *why, size_t size)
{
	return ld_sites_busy(c, why, size);
}

/* Phase 1, target stopped: put the saved bytes back and mark the record.
 * First, phase 2's munmap must be one the target's seccomp filter allows
 * (phase 2 judges each munmap again, in its own stop). */
static int ld_undo_restore(struct ld_ctx *c, struct qp_error *err)
{
	const struct ld_call unmap = { SYS_munmap, "munmap", 2, { c->region, c->region_size } };
	uint32_t state = QP_REC_RESTORED;
	size_t i, restored = 0;
	int ret;

	ret = ld_seccomp_check(c, &unmap, 1, err);
	if (ret)
		return ret;
	for (i = 0; i < c->nfuncs; i++) {
		const struct qp_record_func *f = &c->funcs[i].rec;
		uint8_t now[QP_JMP_REL32_SIZE], jmp[QP_JMP_REL32_SIZE];

		if (!f->len)
			continue; /* no jump: reached through its call sites */
		if (f->len != QP_JMP_REL32_SIZE)
			return qp_seterr(err, -EINVAL, "bad record for '%s'", f->name);
		ret = qp_proc__read(&c->proc, f->site, now, sizeof(now), err);
		if (ret)
			return ret;
		ld_jmp_encode(jmp, f->site, f->new_addr);
		if (memcmp(now, jmp, sizeof(jmp)))
			return qp_seterr(err, QP_ETARGET,
					 "'%s' at 0x%llx no longer jumps to this patch; not undoing",
					 f->name, (unsigned long long)f->site);
	}
	ret = ld_fault(c, QP_FAULT_UNDO_STOPPED, err);
	if (!ret) /* checked, then put back; as they were on failure */
		ret = ld_sites_restore(c, err);
	for (i = c->nfuncs; !ret && i-- > 0;) {
		if (!c->funcs[i].rec.len)
			continue;
		ret = qp_proc__write(&c->proc, c->funcs[i].rec.site, c->funcs[i].rec.saved,
				     QP_JMP_REL32_SIZE, err);
		if (!ret)
			c->funcs[i].written = true;
		if (!ret && !restored++)
			ret = ld_fault(c, QP_FAULT_UNDO_FIRST, err);
	}
	if (!ret)
		ret = ld_fault(c, QP_FAULT_UNDO_RESTORED, err);
	if (!ret)
		ret = qp_proc__write(&c->proc, c->region + offsetof(struct qp_record, state), &state,
				     sizeof(state), err);
	if (ret) { /* the record still says applied: so must the code */
		for (i = 0; i < c->nfuncs; i++) {
			uint8_t jmp[QP_JMP_REL32_SIZE];

			if (!c->funcs[i].written)
				continue;
			ld_jmp_encode(jmp, c->funcs[i].rec.site, c->funcs[i].rec.new_addr);
			qp_proc__write(&c->proc, c->funcs[i].rec.site, jmp, sizeof(jmp), NULL);
		}
		for (i = 0; i < c->nsites; i++)
			if (c->sites[i].written)
				qp_proc__write(&c->proc, c->sites[i].rec.addr, c->sites[i].rec.written,
					       c->sites[i].rec.len, NULL);
	}
	return ret;
}

/* Every thread stopped: if a .so patch's library is to be unloaded, move
 * a thread that may run dlclose to threads[0]; without one, those patches
 * are kept, and the reason said.  Whether a thread was looked for. */
static bool ld_undo_so_pick(struct ld_ctx *c, const struct qp_applied *v, size_t n, bool *free_now)
{
	char why[512];
	size_t i;
	bool any = false;

	for (i = 0; i < n; i++)
		any |= free_now[i] && v[i].so;
	if (!any || ld_so_pick(c, why, sizeof(why)))
		return any;
	for (i = 0; i < n; i++)
		if (free_now[i] && v[i].so) {
			free_now[i] = false;
			snprintf(c->stats->kept_why, sizeof(c->stats->kept_why),
				 "no thread may run dlclose now: %s", why);
		}
	return true;
}

/*
 * Phase 2: no jump leads into undone patches any more, so threads leave
 * them; unmap each once no thread runs in or returns into it.  What is
 * still in use when the retries run out stays mapped (state RESTORED) and
 * a later undo removes it.
 */
bool ld_reapable(struct ld_ctx *c, const struct qp_applied *a)
{
	size_t i;

	if (a->rec.state == QP_REC_RESTORED)
		return true;
	if (a->rec.state != QP_REC_PENDING || !a->abandoned)
		return false;
	/* a loader killed while it wrote the jumps leaves some in place with
	 * the record still pending: that mapping is in use, not abandoned */
	for (i = 0; i < a->rec.nfuncs; i++) {
		const struct qp_record_func *f = &a->funcs[i];
		uint8_t now[QP_JMP_REL32_SIZE], jmp[QP_JMP_REL32_SIZE];

		ld_jmp_encode(jmp, f->site, f->new_addr);
		if (!qp_proc__read(&c->proc, f->site, now, sizeof(now), NULL) &&
		    !memcmp(now, jmp, sizeof(jmp))) {
			snprintf(c->stats->kept_why, sizeof(c->stats->kept_why),
				 "pending patch '%s' has its jump at '%s' in place (a loader died "
				 "while writing its jumps)", a->rec.id, f->name);
			return false;
		}
	}
	return true;
}

int ld_reap(struct ld_ctx *c, struct qp_applied *v, size_t n, struct qp_error *err)
{
	bool *free_now = calloc(n ? n : 1, sizeof(*free_now));
	struct qp_error se = { 0 };
	size_t left = 0, i;
	int attempt, ret = 0;
	bool failed = false;
	double held_t0;

	if (!free_now)
		return qp_seterr(err, -ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		/* a pending record with a jump in place is in use: waiting for
		 * it would not help (its sites can be read while the process runs) */
		if (v[i].rec.state == QP_REC_PENDING && v[i].abandoned && !ld_reapable(c, &v[i])) {
			v[i].abandoned = false;
			c->stats->kept++;
		}
		left += v[i].rec.state == QP_REC_RESTORED ||
			(v[i].rec.state == QP_REC_PENDING && v[i].abandoned);
	}
	for (attempt = 0; left && attempt < ld_tries(c); attempt++) {
		if (attempt)
			ld_pause(c, NULL);
		ret = qp_proc__stop(&c->proc, err);
		if (ret)
			break;
		/* every thread stopped: which mappings no thread uses */
		for (i = 0; i < n; i++)
			free_now[i] = ld_reapable(c, &v[i]) &&
				      !ld_region_busy(c, &v[i], c->stats->kept_why,
						      sizeof(c->stats->kept_why));
		if (c->cfi_wanted) { /* a stack to unwind: the CFI, loaded with the target running */
			c->cfi_wanted = false;
			qp_proc__resume(&c->proc, NULL);
			ld_cfi_load(c);
			attempt--; /* this one does not count */
			continue;
		}
		/* .so patches: their library is dlclosed by a thread that may */
		held_t0 = now_us();
		if (ld_undo_so_pick(c, v, n, free_now) && now_us() - held_t0 > c->stats->pick_us)
			c->stats->pick_us = now_us() - held_t0;
		for (i = 0; i < n && !failed; i++) { /* declared to the seccomp check */
			const struct ld_call unmap = { SYS_munmap, "munmap", 2,
						       { v[i].region, v[i].rec.region_size } };

			if (free_now[i] && ld_seccomp_check(c, &unmap, 1, &se))
				failed = true;
		}
		if (failed) {
			snprintf(c->stats->kept_why, sizeof(c->stats->kept_why), "%s", se.msg);
			qp_proc__resume(&c->proc, NULL);
			break;
		}
		/* those cannot be entered again (no jump leads there): remove
		 * them with threads[0] alone held */
		held_t0 = now_us();
		qp_proc__release_others(&c->proc);
		for (i = 0; i < n && !failed; i++) {
			struct qp_error e = { 0 };
			int64_t res;

			if (!free_now[i])
				continue;
			if (v[i].so && ld_so_close(c, &v[i], &e)) {
				snprintf(c->stats->kept_why, sizeof(c->stats->kept_why),
					 "its library could not be unloaded: %s", e.msg);
				failed = true;
				continue;
			}
			if (!ld_syscall(c, SYS_munmap, "munmap", 2,
					(uint64_t[]){ v[i].region, v[i].rec.region_size }, &res, &e)) {
				c->stats->reaped += v[i].rec.state == QP_REC_PENDING;
				v[i].rec.state = 0;
				left--;
			} else { /* not for a thread in the way: waiting does not help */
				snprintf(c->stats->kept_why, sizeof(c->stats->kept_why), "%s", e.msg);
				failed = true;
			}
		}
		c->stats->held_us += now_us() - held_t0;
		ret = ld_check_death(c, qp_proc__died_now(&c->proc) ? QP_EPROC : 0, err);
		qp_proc__resume(&c->proc, NULL);
		if (ret || failed)
			break;
	}
	free(free_now);
	c->stats->kept += left;
	/* the old code is back; a mapping left behind is removed later, but a
	 * target that died meanwhile must be reported */
	return ld_check_death(c, ret, err);
}

/*
 * May patch v[k], not the last applied, come out?  Patches stack where
 * they redirect the same function: the later one's saved bytes are the
 * earlier one's jump.  Where their jump sites are apart (patches of
 * different functions or objects: a fix to the program and one to a
 * library), the earlier one can come out first.
 */
static int ld_undo_below(const struct qp_applied *v, size_t n, size_t k, pid_t pid,
			 struct qp_error *err)
{
	size_t i, f, g;

	for (i = k + 1; i < n; i++) {
		if (v[i].rec.state != QP_REC_APPLIED)
			continue;
		for (f = 0; f < v[k].nsites; f++)
			for (g = 0; g < v[i].nsites; g++)
				if (v[k].sites[f].addr == v[i].sites[g].addr)
					return qp_seterr(err, -EBUSY,
							 "patch '%s' of process %d rewrote the call site at 0x%llx again, "
							 "over '%s': undo '%s' first",
							 v[i].rec.id, (int)pid,
							 (unsigned long long)v[k].sites[f].addr, v[k].rec.id,
							 v[i].rec.id);
		for (f = 0; f < v[k].rec.nfuncs; f++) {
			const struct qp_record_func *x = &v[k].funcs[f];

			for (g = 0; g < v[i].rec.nfuncs; g++) {
				const struct qp_record_func *y = &v[i].funcs[g];

				if (x->site < y->site + y->len && y->site < x->site + x->len)
					return qp_seterr(err, -EBUSY,
							 "patch '%s' of process %d redirects '%s' again, "
							 "over '%s': undo '%s' first",
							 v[i].rec.id, (int)pid, y->name, v[k].rec.id,
							 v[i].rec.id);
			}
		}
	}
	return 0;
}

/*
 * Nothing applied, but maybe mappings no loader will finish: removed (with
 * every thread stopped to see that none is in one), and the undo still
 * says there was no patch to undo.
 */
static int ld_undo_abandoned(struct ld_ctx *c, struct qp_applied *v, size_t n,
			     struct qp_error *err)
{
	size_t i, k = 0;
	int ret;

	for (i = 0; i < n; i++)
		k += v[i].rec.state == QP_REC_RESTORED || v[i].abandoned;
	ret = k ? qp_proc__find_gadget_in(&c->proc, &c->maps, err) : 0;
	if (!ret && k) {
		ld_block_signals(&c->sigmask);
		ret = ld_reap(c, v, n, err);
		pthread_sigmask(SIG_SETMASK, &c->sigmask, NULL);
	}
	if (ret)
		return ret;
	return qp_seterr(err, -ENOENT, "process %d has no patch applied%s", (int)c->pid,
			 c->stats->reaped ? " (the mapping of a patch never applied was removed)" :
			 c->stats->kept ? " (a mapping left by an earlier run is still in use)" : "");
}

int qp_load_undo(pid_t pid, const char *id, const struct qp_load_opts *opts,
		 struct qp_load_stats *stats, struct qp_error *err)
{
	struct ld_ctx c = { .pid = pid, .opts = opts, .stats = stats, .undo = true };
	struct qp_applied *applied = NULL, *a = NULL;
	double t0 = now_us();
	size_t n = 0, i;
	int ret;

	memset(stats, 0, sizeof(*stats));
	ret = ld_begin(&c, err);
	if (!ret)
		ret = qp_maps__read(pid, &c.maps, err);
	ld_phase(&c, "read maps");
	if (!ret)
		ret = ld_list(&c.proc, &c.maps, true, &applied, &n, err);
	ld_phase(&c, "records");
	for (i = n; !ret && i-- > 0;)
		if (applied[i].rec.state == QP_REC_APPLIED && !a)
			a = &applied[i];
	if (!ret && !a) {
		ret = ld_undo_abandoned(&c, applied, n, err);
		goto out;
	}
	if (!ret && a && id && strcmp(id, a->rec.id)) {
		for (i = 0; i < n && strcmp(applied[i].rec.id, id); i++)
			;
		if (i < n && applied[i].rec.state == QP_REC_APPLIED)
			ret = ld_undo_below(applied, n, i, pid, err);
		else
			ret = qp_seterr(err, -ENOENT, "patch '%s' is not applied to process %d", id,
					(int)pid);
		if (!ret)
			a = &applied[i];
	}
	if (ret)
		goto out;
	c.region = a->region;
	c.region_size = a->rec.region_size;
	c.nfuncs = a->rec.nfuncs;
	c.funcs = calloc(c.nfuncs ? c.nfuncs : 1, sizeof(*c.funcs));
	if (!c.funcs) {
		ret = qp_seterr(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < c.nfuncs; i++)
		c.funcs[i].rec = a->funcs[i];
	c.nsites = a->nsites;
	c.sites = calloc(c.nsites ? c.nsites : 1, sizeof(*c.sites));
	if (!c.sites) {
		ret = qp_seterr(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < c.nsites; i++)
		c.sites[i].rec = a->sites[i];
	ret = qp_proc__find_gadget_in(&c.proc, &c.maps, err);
	ld_phase(&c, "find syscall");
	for (i = 0; !ret && i < n; i++) /* a .so patch's library gets unloaded */
		if (applied[i].so && (applied[i].rec.state == QP_REC_RESTORED || &applied[i] == a)) {
			ret = ld_so_unsafe(&c, err);
			break;
		}
	/* the call frame information only when a stack needs unwinding; a
	 * .so patch's undo picks the thread that runs dlclose with it */
	if (!ret)
		ld_cfi_lazy(&c, applied, n);
	for (i = 0; !ret && i < n && !applied[i].so; i++)
		;
	if (!ret && i < n)
		ld_cfi_load(&c);
	ld_phase(&c, "CFI");
	ld_block_signals(&c.sigmask);
	if (!ret)
		ret = ld_while_stopped(&c, ld_undo_busy, ld_undo_restore, err);
	/* no jump leads into the patch now: a coroutine suspended in it was
	 * created before, its context is in memory already (if the search
	 * fails, every mapping stays: ld_coro_busy) */
	if (!ret)
		ld_coro_find(&c, NULL);
	ld_phase(&c, "coroutines");
	if (!ret) {
		a->rec.state = QP_REC_RESTORED;
		ret = ld_reap(&c, applied, n, err);
	}
	ld_phase(&c, "remove mapping");
	pthread_sigmask(SIG_SETMASK, &c.sigmask, NULL);
	stats->region = c.region;
	stats->nfuncs = c.nfuncs;
	stats->nsites = c.nsites;
out:
	stats->total_us = now_us() - t0;
	qp_applied__free(applied, n);
	c.region = 0;
	ld_unlock(c.lock_fd, c.lock_path);
	ld_ctx_release(&c);
	ld_phase(&c, "unlock, release");
	stats->total_us = now_us() - t0;
	return ret;
}
