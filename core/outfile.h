/* outfile.h - safe output files and directories: every file libvkgpt2 (and the vkgpt2 command)
 * writes goes through here, so that no writer can destroy what it reads or leave half a file.
 *
 * The rules (docs/RELIABILITY.md, "Writing files"):
 *   - A file is written to a temporary in its destination directory and linked or renamed into
 *     place only when complete (flushed and fsync'ed). On Linux the temporary is an O_TMPFILE
 *     inode with no name at all, so even SIGKILL leaves nothing behind; elsewhere (or with
 *     $VKGPT2_NO_TMPFILE=1) it is a named ".NAME.vkgpt2-PID-XXXXXX" that gpt2_out_cleanup (from a
 *     signal handler) removes, and that the next write to the same NAME removes when PID is dead.
 *   - A directory (a Hugging Face model) is built in a ".NAME.vkgpt2-PID-XXXXXX" directory beside
 *     it and renamed into place.
 *   - An existing output is replaced only without GPT2_OUT_NO_REPLACE, atomically (the old one
 *     stays whole until the new one takes its name); an existing directory only when it holds
 *     nothing but plain files and is empty or a model (config.json): never a tree of the user's.
 *   - Outputs that are not regular files (/dev/null, /dev/stdout, a FIFO) are written directly.
 *   - gpt2_out_check refuses an output that is an input, lies inside an input directory, or holds
 *     an input, comparing device and inode (so "./m.gguf", symlinks and hard links are caught),
 *     and reports an unwritable destination before any long work starts.
 */
#ifndef VKG_OUTFILE_H
#define VKG_OUTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Flags. The internal writers (gpt2_write_*) replace an existing output unless told not to; the
 * public API (VKG_OUT_FORCE in vkgpt2.h) is the other way round. */
#define GPT2_OUT_NO_REPLACE (1u << 16) /* an existing output is an error (GPT2_OUT_EXISTS) */
#define GPT2_OUT_DIR (1u << 17)        /* gpt2_out_check: the output is a directory */

/* Returned by gpt2_out_check, gpt2_out_open and gpt2_outdir_open when the output exists and
 * GPT2_OUT_NO_REPLACE is set (the same value as VKG_OUT_EXISTS). */
#define GPT2_OUT_EXISTS (-2)

/* Checks that path can be written, before any work: its directory exists and is writable, it is
 * none of inputs (NULL-terminated, may be NULL) nor inside nor around one of them, and (with
 * GPT2_OUT_NO_REPLACE) it does not exist. An input naming config.json or a .safetensors file
 * stands for its directory (what the model loader reads). Returns 0, GPT2_OUT_EXISTS or -1, with
 * one line in err naming path. */
int gpt2_out_check(const char *path, unsigned flags, const char *const *inputs, char *err, size_t errlen);

/* ---- one output file ---- */
typedef struct gpt2_out {
    FILE *f;           /* buffered stream on the temporary (write through gpt2_out_write or f) */
    int fd;            /* its descriptor */
    char *path;        /* the final path (a copy) */
    char *tmp;         /* the named temporary, or NULL (O_TMPFILE, or a direct write) */
    bool anon;         /* the temporary is an O_TMPFILE inode */
    bool direct;       /* path is not a regular file (a device, a FIFO): written as it is */
    unsigned flags;    /* GPT2_OUT_* */
    bool failed;       /* a write failed */
    int err_no;        /* its errno */
    char label[4096];  /* the name in messages and progress (default: path) */
    uint64_t done;     /* bytes written */
    uint64_t total;    /* bytes expected (set by the writer for progress; 0: unknown) */
    uint64_t reported; /* done at the last progress report */
} gpt2_out;

/* Opens a temporary for path (checked as gpt2_out_check without inputs). Returns 0,
 * GPT2_OUT_EXISTS or -1 with err naming path. */
int gpt2_out_open(gpt2_out *o, const char *path, unsigned flags, char *err, size_t errlen);
/* Sets the bytes the file will hold, for progress reports (step "writing", name label). */
void gpt2_out_expect(gpt2_out *o, uint64_t total);
/* Appends n bytes (errors are remembered and reported by gpt2_out_close). */
void gpt2_out_write(gpt2_out *o, const void *p, size_t n);
/* Flushes, syncs and puts the file in place; on any earlier or present failure removes the
 * temporary instead, leaving an old file as it was. Returns 0 or -1 with err naming the file. */
int gpt2_out_close(gpt2_out *o, char *err, size_t errlen);
/* Drops the temporary (the old file, if any, stays). */
void gpt2_out_abort(gpt2_out *o);

/* ---- one output directory ---- */
typedef struct gpt2_outdir {
    char *path;     /* the final path (a copy) */
    char *tmp;      /* the directory to write the files into */
    unsigned flags; /* GPT2_OUT_* */
} gpt2_outdir;

/* Makes the temporary directory for path. Returns 0, GPT2_OUT_EXISTS or -1 with err. */
int gpt2_outdir_open(gpt2_outdir *d, const char *path, unsigned flags, char *err, size_t errlen);
/* Renames the finished directory into place (replacing an old one as the flags allow). */
int gpt2_outdir_commit(gpt2_outdir *d, char *err, size_t errlen);
/* Removes the temporary directory and what is in it. */
void gpt2_outdir_abort(gpt2_outdir *d);

/* Removes every temporary this process has open now (async-signal-safe: for a signal handler
 * that then exits). O_TMPFILE temporaries need nothing. */
void gpt2_out_cleanup(void);

#endif
