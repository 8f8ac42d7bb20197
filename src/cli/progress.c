/*
 * progress.c -- the terminal progress bar of progress.h: "\r<label> [####....]
 * 45%  27000/60000  3.1 s", redrawn at most every 100 ms, cleared at the end.
 */
#include "cli/progress.h"

#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"

#define BAR_WIDTH 30
#define REDRAW_NS 100000000ull

void progress_start(cli_progress *p, const char *label, uint64_t total)
{
    p->enabled = isatty(STDOUT_FILENO) && isatty(STDERR_FILENO);
    p->label = label;
    p->total = total;
    p->start_ns = cli_now_ns();
    p->last_ns = 0;
    p->drawn = 0;
}

void progress_update(cli_progress *p, uint64_t done)
{
    if (!p->enabled)
        return;
    uint64_t now = cli_now_ns();
    if (p->drawn && now - p->last_ns < REDRAW_NS && done < p->total)
        return;
    p->last_ns = now;
    if (done > p->total)
        done = p->total;
    unsigned fill = p->total ? (unsigned)(done * BAR_WIDTH / p->total) : BAR_WIDTH;
    char bar[BAR_WIDTH + 1];
    for (unsigned i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    double pct = p->total ? 100.0 * (double)done / (double)p->total : 100.0;
    fprintf(stderr, "\r%-10s [%s] %3.0f%%  %llu/%llu  %.1f s\033[K", p->label, bar, pct,
            (unsigned long long)done, (unsigned long long)p->total,
            (double)(now - p->start_ns) / 1e9);
    fflush(stderr);
    p->drawn = 1;
}

void progress_finish(cli_progress *p)
{
    if (p->enabled && p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->drawn = 0;
}
