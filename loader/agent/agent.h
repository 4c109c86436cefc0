/* SPDX-License-Identifier: MIT */
/*
 * The protocol between qpatch-agentctl and the agent library
 * (libqpatch-agent.so) in a process, over a Unix stream socket: one
 * request per connection.
 *
 * Request: one header line, then for apply the patch file's bytes:
 *   apply SIZE RETRIES DELAY_MS FLAGS NAME\n  <SIZE bytes>
 *   so RETRIES DELAY_MS FLAGS PATH\n   (a hand-written library: PATH, absolute,
 *                                     the rest of the line, checked by the
 *                                     client against the trust rules and
 *                                     the store's policy)
 *   list\n
 *   undo ID\n                 (ID "-": the last applied)
 * FLAGS: QP_AGENT_F_*.  NAME names the file in messages (no spaces).
 * Reply: "ok\n" or "refused\n", then text for the user, then end of
 * stream.  The agent answers root (SO_PEERCRED uid 0) only.
 */
#ifndef QPATCH_LOADER_AGENT_H
#define QPATCH_LOADER_AGENT_H

#define QP_AGENT_SOCK_DIR "/run/qpatch"          /* root: QP_AGENT_SOCK_DIR/agent-PID.sock */
#define QP_AGENT_ABSTRACT "qpatch-agent-"        /* else the abstract name "@qpatch-agent-PID" */
#define QP_AGENT_MAX_PATCH (256u << 20)          /* bytes of a patch accepted at most */
#define QP_AGENT_LINE 512                        /* bytes of a header line at most */
#define QP_AGENT_TIMEOUT_S 10                    /* a request must arrive within this */

#define QP_AGENT_F_ALLOW_ACTIVE 1u               /* qp_load_opts.allow_active */
#define QP_AGENT_F_IGNORE_SECCOMP 2u             /* qp_load_opts.ignore_seccomp */
#define QP_AGENT_F_REWRITE_CALLS 4u              /* qp_load_opts.rewrite_calls */
#define QP_AGENT_F_NO_TYPE_CHECK 8u              /* qp_load_opts.no_type_check */

#endif
