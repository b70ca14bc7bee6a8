#!/bin/bash
# simctl.sh - start ttsmig-sim instances from shell scripts (demo, benchmarks).
#
# Source it, then:
#   sim_start NAME BUILD_DIR [ttsmig-sim options...]
#       starts a simulator on a free loopback port; sets ${NAME}_URL and
#       ${NAME}_PID; its log goes to $SIM_LOGDIR/NAME.log
#   sim_stop_all
#       stops every simulator started here (also run on EXIT if you trap it)
SIM_PIDS=()
SIM_LOGDIR=${SIM_LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/ttsmig-sim.XXXXXX")}

sim_start() {
	local name=$1 build=$2
	shift 2
	local out="$SIM_LOGDIR/$name.out"
	: >"$out"
	"$build/ttsmig-sim" --listen 127.0.0.1:0 --exit-with-parent "$@" >"$out" 2>"$SIM_LOGDIR/$name.log" &
	local pid=$!
	SIM_PIDS+=("$pid")
	local line=""
	for _ in $(seq 1 200); do
		line=$(head -n 1 "$out" 2>/dev/null)
		case "$line" in "listening on "*) break ;; esac
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "simctl: $name exited at start:" >&2
			cat "$SIM_LOGDIR/$name.log" >&2
			return 1
		fi
		sleep 0.05
	done
	case "$line" in
	"listening on "*) ;;
	*) echo "simctl: $name did not start in 10 s" >&2; return 1 ;;
	esac
	printf -v "${name}_URL" '%s' "${line#listening on }"
	printf -v "${name}_PID" '%s' "$pid"
}

sim_stop_all() {
	local pid
	for pid in "${SIM_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${SIM_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	SIM_PIDS=()
}
