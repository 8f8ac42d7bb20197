# bench/build.sh -- sourced by bench scripts (after setting ROOT): the
# release build of the library and one bench program, and the build facts
# every results file starts with.

# bench_build NAME: the release tree in $ROOT/build, then bench/NAME.c
# linked against it as $ROOT/build/NAME
bench_build() {
    cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release -DNEEDLE_TESTS=OFF >/dev/null
    cmake --build "$ROOT/build" -j"$(nproc)" >/dev/null
    gcc -O2 -std=c11 -Wall -Wextra -Werror -I"$ROOT/include" "$ROOT/bench/$1.c" \
        "$ROOT/build/libneedle.a" -lopenblas -ljansson -lroaring -lm -lpthread -o "$ROOT/build/$1"
}

# bench_build_json: the JSON members "commit" (HEAD), "src_changed" (files
# under src/ and include/ that differ from it) and "cpus", comma-separated
bench_build_json() {
    printf '"commit":"%s","src_changed":%s,"cpus":%s' \
        "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)" \
        "$(git -C "$ROOT" status --porcelain -- src include 2>/dev/null | wc -l)" "$(nproc)"
}
