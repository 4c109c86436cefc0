# rw_lock_cache WHO: one run at a time on $QP_RW_CACHE (sourced by run.sh
# and sweep.sh).  Another run would rebuild or delete the trees this one
# uses (a deployed build is redone for another qpatch-cc).  The lock is fd 8,
# held until the script exits; WHO names the waiting script in the message.
rw_lock_cache() {
	mkdir -p "$QP_RW_CACHE"
	exec 8>"$QP_RW_CACHE/.lock"
	if ! flock -n 8; then
		echo "$1: another run is using $QP_RW_CACHE (lock $QP_RW_CACHE/.lock); waiting for it" >&2
		flock 8
	fi
}
