/* cli_out.h - the command's side of writing files and of progress: progress lines on a terminal,
 * temporaries removed on Ctrl-C, and the messages for outputs that cannot be written (cli_out.c).
 */
#ifndef VKG_CLI_OUT_H
#define VKG_CLI_OUT_H

/* Shows the library's progress on stderr when stderr is a terminal: a step that lasts over a
 * second ($VKGPT2_PROGRESS_DELAY_MS overrides) gets one line, redrawn in place and cleared when
 * the step ends, before anything else is printed, and at exit. */
void cli_progress_start(void);
/* Clears the progress line if one is shown (call before printing anything). */
void cli_progress_clear(void);
/* For commands that write files: SIGINT, SIGTERM and SIGHUP remove the temporaries of writes in
 * progress (vkg_output_cleanup) and then end the process by that signal. */
void cli_cleanup_on_signals(void);
/* Prints the error of a failed write or check: rc VKG_OUT_EXISTS gets "PATH: already exists
 * (--force replaces it)", anything else err. flag (e.g. "--trace") or NULL prefixes it. */
void cli_output_error(int rc, const char *flag, const char *path, const char *err);
/* vkg_output_check for flag's path before any work, with the message printed; 0 or -1. */
int cli_check_output(const char *flag, const char *path, unsigned flags, const char *const *inputs);

#endif
