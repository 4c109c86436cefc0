#!/bin/bash
# One connected client for redis.sh: a single redis-cli connection to
# database DB sending "INCR KEY" every 20 ms until STOPFILE exists; replies
# go to stdout (one integer per line; anything else is an error).
# SIGTERM stops it at once (redis-cli first, then the sender on SIGPIPE).
#   client.sh CLI PORT DB KEY STOPFILE
cli=$1 port=$2 db=$3 key=$4 stop=$5
fifo=$(mktemp -u "${TMPDIR:-/tmp}/qp-rw-client.XXXXXX")
mkfifo "$fifo" && exec 3<>"$fifo" && rm -f "$fifo"
trap 'kill "$cli_pid" 2>/dev/null' TERM INT
while [ ! -e "$stop" ]; do
	echo "INCR $key"
	read -r -t 0.02 -u 3 _ # sleeps 20 ms without a process
done | "$cli" -p "$port" -n "$db" &
cli_pid=$!
wait "$cli_pid"
wait
