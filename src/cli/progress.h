/*
 * progress.h -- a progress bar for long commands (import, bench). It is drawn
 * on stderr with '\r' only when both stdout and stderr are terminals, so
 * output piped to a file or another program stays clean (SPEC section 2).
 */
#ifndef NDL_CLI_PROGRESS_H
#define NDL_CLI_PROGRESS_H

#include <stdint.h>

typedef struct cli_progress {
    int enabled;          /* drawing at all (terminal) */
    const char *label;
    uint64_t total;
    uint64_t start_ns;
    uint64_t last_ns;     /* last redraw, to redraw at most ~10 times a second */
    int drawn;            /* a bar is on screen and needs clearing */
} cli_progress;

void progress_start(cli_progress *p, const char *label, uint64_t total);
void progress_update(cli_progress *p, uint64_t done);
/* Clear the bar (if drawn) so following output starts on a clean line. */
void progress_finish(cli_progress *p);

#endif
