# quiet.sh -- sourced by run.sh, ingest_grid.sh, reopen_bench.sh and http_bench.sh (POSIX sh).
# cpu_busy: fraction of all CPUs busy over the next second (/proc/stat).
# wait_quiet: wait (at most $QUIET seconds) until the CPUs are under a
# quarter busy; sets $busy to the last fraction seen.
cpu_busy() {
    a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
    printf '%s\n%s\n' "$a" "$b" | awk '{ idle = $5 + $6; tot = 0; for (i = 2; i <= 9 && i <= NF; i++) tot += $i;
        if (NR == 1) { i0 = idle; t0 = tot } else printf "%.2f\n", (tot - t0 > 0) ? 1 - (idle - i0) / (tot - t0) : 0 }'
}

wait_quiet() {
    waited=0
    while :; do
        busy=$(cpu_busy)
        if awk -v b="$busy" 'BEGIN { exit !(b < 0.25) }' || [ "$waited" -ge "${QUIET:-30}" ]; then
            return 0
        fi
        waited=$((waited + 1))
    done
}
