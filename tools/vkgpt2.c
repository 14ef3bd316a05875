/* vkgpt2.c - the vkgpt2 command: generate, eval, tokenize, detokenize, synth, devices.
 *
 * It uses libvkgpt2 through its public header only, like any other client.
 * Sections: usage, options, generate, eval, tokenize/detokenize, synth, devices, main.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core/json.h"
#include "cli_out.h"
#include "vkgpt2.h"

/* The model tools/demo.sh makes; without -m it is used if it exists (see find_model). */
#define DEFAULT_MODEL "models/synth-124M-f16"

int cmd_bench(int argc, char **argv, int first);    /* cmd_bench.c */
int cmd_convert(int argc, char **argv, int first);  /* cmd_convert.c */
int cmd_quantize(int argc, char **argv, int first); /* cmd_quantize.c */
int cmd_kbench(int argc, char **argv, int first);   /* cmd_kbench.c */
int cmd_selftest(int argc, char **argv, int first); /* cmd_selftest.c */
int cmd_generate_batch(const char *model_path, vkg_session_params sess, vkg_sample_params sp,
                       const char *prompt, size_t plen, const char *prompts_file, int n_parallel, bool json,
                       double load_ms_extra, volatile sig_atomic_t *interrupted,
                       bool *stdout_closed); /* cmd_batch.c */

/* ---- signals ----
 * Ctrl-C (SIGINT) during generation stops at the next token: the text so far and the timings are
 * printed and the exit status is 130 (128 + SIGINT); a second Ctrl-C exits at once. SIGPIPE is
 * ignored: when the reader of stdout goes away (EPIPE), generation stops and vkgpt2 exits quietly
 * (no message, no timings) with status 141 (128 + SIGPIPE), what a shell reports for a command
 * killed by SIGPIPE. */
#define EXIT_INTERRUPTED 130
#define EXIT_PIPE_CLOSED 141

static volatile sig_atomic_t interrupted;
static bool stdout_closed; /* a write to stdout failed with EPIPE */

static void on_sigint(int sig)
{
    (void)sig;
    if (interrupted) {
        vkg_output_cleanup(); /* a --trace or --logits being written */
        _exit(EXIT_INTERRUPTED);
    }
    interrupted = 1;
}

static void install_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* ---- usage ---- */

/* The command synopsis (first part of `vkgpt2 --help`). */
static const char synopsis_text[] =
    "usage: vkgpt2 [generate] [options]          generate text (the default command)\n"
    "       vkgpt2 eval [-m MODEL] --ids \"ID ...\" --logits OUT [options]   logits of given ids\n"
    "       vkgpt2 tokenize [-m MODEL_OR_VOCAB_DIR]  < text      (ids on one line)\n"
    "       vkgpt2 detokenize [-m MODEL_OR_VOCAB_DIR] < ids      (bytes out)\n"
    "       vkgpt2 synth -o PATH --size S [--format hf|ggml|gguf] [--type f32|f16] [--seed N] [--vocab DIR] "
    "[--force]\n"
    "       vkgpt2 devices                               list Vulkan devices\n"
    "       vkgpt2 selftest [--device D] [--quick] [--json]  check every kernel of a device (selftest "
    "--help)\n"
    "       vkgpt2 bench -m MODEL [-n N] [-r R] [-t N] [--backend B]  decode speed (see bench --help)\n"
    "       vkgpt2 bench kernels [--backend cpu|vulkan|all] [--sizes 124M,...]  per-op speed\n"
    "       vkgpt2 kbench SHADER.comp --grid X,Y,Z --buffer SIZE[:init]...  time a shader (kbench --help)\n"
    "       vkgpt2 convert IN OUT.gguf [--force]        any model vkgpt2 reads, written as GGUF\n"
    "       vkgpt2 quantize IN OUT TYPE [--force]  TYPE q8_0|q5_1|q5_0|q4_1|q4_0 (OUT.gguf: GGUF, else "
    "ggml)\n"
    "       vkgpt2 --version                             the version of vkgpt2 and its library\n"
    "Every command takes --help (its own flags and defaults); --opt=value works as --opt value.\n";

/* -m, the same for every command that loads a model. */
#define MODEL_HELP                                                                                           \
    "  -m, --model PATH        model: HF directory, ggml .bin, GGUF or llm.c file (default: " DEFAULT_MODEL  \
    ",\n"                                                                                                    \
    "                          the model tools/demo.sh makes, else the first model under models/)\n"

/* Backend flags shared by generate and eval. */
#define BACKEND_HELP                                                                                         \
    "  -t, --threads N         CPU threads (default: the physical cores; at most 4 x the online CPUs)\n"     \
    "  -b, --batch_size N      prompt tokens per step (default 64)\n"                                        \
    "      --backend B         auto (default: Vulkan on a GPU, else the CPU; a Vulkan device that\n"         \
    "                          runs on the CPU, like lavapipe, only when named), cpu or vulkan\n"            \
    "      --device D          the Vulkan device: " CLI_DEVICE_FORMS "\n"                                    \
    "                          (see vkgpt2 devices; default: the best one); one that is not there is\n"      \
    "                          an error; ignored by --backend cpu\n"                                         \
    "      --kv f16|f32        KV cache type (default: f16 on Vulkan, f32 on the CPU, following the\n"       \
    "                          backend actually chosen)\n"                                                   \
    "  -v, --verbose           more notices and counters on stderr\n"

#define PROFILE_HELP                                                                                         \
    "      --profile           per-kernel table on stderr (GPU timestamps / CPU clocks, GB/s,\n"             \
    "                          GFLOP/s, share of the measured peaks); in --json under \"profile\"\n"         \
    "      --trace FILE.json   Chrome trace of every dispatch, submit, CPU node, step and sampling\n"        \
    "                          (open in Perfetto or chrome://tracing); see docs/PROFILING.md\n"

/* `vkgpt2 generate --help` (also the second part of `vkgpt2 --help`). */
static const char generate_help[] =
    "generate options (ggml's gpt-2 flags):\n" MODEL_HELP
    "  -p, --prompt TEXT       prompt (UTF-8); empty: start from <|endoftext|>\n"
    "  -f, --file FILE         read the prompt from FILE ('-' for stdin)\n"
    "  -n, --n_predict N       tokens to generate (default 200; clamped to the context)\n"
    "  -s, --seed N            sampling seed (default: a random one from the kernel's entropy\n"
    "                          source, as for any negative N); the seed used is printed with the\n"
    "                          timings and in --json, so that -s SEED repeats the run\n"
    "      --top_k K           keep the K most likely tokens (default 40; 0: all)\n"
    "      --top_p P           nucleus mass (default 0.9)\n"
    "      --temp T            temperature (default 0.9; 0: greedy)\n"
    "      --repeat-penalty R  penalise the last tokens (default 1.0: off)\n"
    "      --repeat-last-n N   window of the penalty (default 64)\n"
    "      --ignore-eos        keep going after <|endoftext|>\n"
    "      --tokens-per-submit K  decode tokens per GPU submit when the device draws (1..16,\n"
    "                          default 8): each step's pick feeds the next on the device, the\n"
    "                          same tokens for every K; streamed output arrives K at a time\n" BACKEND_HELP
    "      --json              print one JSON object instead of text (ids, text, seed, timings, "
    "memory)\n" PROFILE_HELP
    "                          (--profile and --trace: single-sequence runs, not -np/--prompts)\n"
    "      --force             replace an existing --trace file (default: refuse)\n"
    "  -np, --parallel N       generate N continuations of the prompt at once, one KV cache slot\n"
    "                          each (sequence i samples with seed + i); with --prompts: at most N\n"
    "                          sequences at once (default 4), finished ones replaced by waiting ones\n"
    "      --prompts FILE      one prompt per non-empty line, each its own sequence (line i: seed + i)\n"
    "                          Text output: each sequence as a block \"[seq I] PROMPT+TEXT\" when it\n"
    "                          finishes; --json: one object per sequence per line (JSON lines)\n"
    "  -h, --help              this text\n"
    "\n"
    "Text goes to stdout, timings and notices to stderr. A reader that goes away (| head) ends any\n"
    "command quietly with status 141. Files are written to a temporary beside them and renamed into\n"
    "place when complete; an output that is an input (or lies inside an input directory) is\n"
    "refused, and an existing one is replaced only with --force. Environment: VKGPT2_VALIDATION=1\n"
    "turns on Khronos validation, VKGPT2_CPU_OPS=op,... runs the named ops (embed, layernorm,\n"
    "matmul, gelu, attention, softmax) on the CPU under the Vulkan backend.\n";

/* Pointers to the other pages, at the end of `vkgpt2 --help`. */
static const char more_help[] =
    "\n"
    "eval: -m, --ids \"ID ID ...\", --logits OUT (little-endian f32 [n_tokens][n_vocab]), --json,\n"
    "  -t, -b, --backend, --device, --kv, --profile, --trace, -v (vkgpt2 eval --help).\n"
    "synth: -o PATH, --size tiny|124M|355M|774M|1558M|LxExH, --format, --type, --seed, --vocab DIR\n"
    "  (vkgpt2 synth --help).\n";

static const char eval_help[] =
    "usage: vkgpt2 eval [-m MODEL] --ids \"ID ID ...\" --logits OUT [options]\n"
    "Runs the ids through the model in one context and writes every position's logits.\n"
    "\n" MODEL_HELP "      --ids \"ID ...\"      token ids (spaces, commas or newlines between)\n"
    "      --logits OUT        where the logits go: little-endian f32 [n_tokens][n_vocab]; '-' stdout\n"
    "      --force             replace an existing --logits or --trace file (default: refuse)\n" BACKEND_HELP
        PROFILE_HELP "      --json              with --profile: the profile as one JSON object on stdout\n"
    "  -h, --help              this text\n";

static const char tokenize_help[] =
    "usage: vkgpt2 tokenize [-m MODEL_OR_VOCAB_DIR] < text\n"
    "Reads UTF-8 text on stdin and prints its GPT-2 token ids on one line, separated by spaces.\n"
    "\n"
    "  -m, --model PATH        a model (its vocabulary) or a directory with vocab.json + merges.txt\n"
    "                          (or encoder.json + vocab.bpe) (default: " DEFAULT_MODEL ", else the\n"
    "                          first model under models/)\n"
    "  -h, --help              this text\n";

static const char detokenize_help[] =
    "usage: vkgpt2 detokenize [-m MODEL_OR_VOCAB_DIR] < ids\n"
    "Reads token ids on stdin (spaces, commas or newlines between) and writes their bytes to stdout.\n"
    "\n"
    "  -m, --model PATH        a model (its vocabulary) or a directory with vocab.json + merges.txt\n"
    "                          (or encoder.json + vocab.bpe) (default: " DEFAULT_MODEL ", else the\n"
    "                          first model under models/)\n"
    "  -h, --help              this text\n";

static const char synth_help[] =
    "usage: vkgpt2 synth -o PATH [--size S] [--format hf|ggml|gguf] [--type f32|f16] [--seed N]\n"
    "                    [--vocab DIR] [--force]\n"
    "Writes a deterministic synthetic GPT-2: random weights at realistic scales. Its text is noise;\n"
    "it serves tests, demos and benchmarks.\n"
    "\n"
    "  -o, --output PATH       where: PATH.gguf a GGUF file, PATH.bin a ggml file, anything else a\n"
    "                          Hugging Face directory\n"
    "      --size S            tiny (default), 124M, 355M, 774M, 1558M or LxExH (layers x width x\n"
    "                          heads, e.g. 4x256x8)\n"
    "      --format F          hf, ggml or gguf (default: from PATH as above; a contradiction is an\n"
    "                          error)\n"
    "      --type T            f32 (default) or f16\n"
    "      --seed N            weights' seed (default 1): the same seed, the same model\n"
    "      --vocab DIR         GPT-2's real vocabulary (encoder.json + vocab.bpe, see\n"
    "                          tools/fetch-vocab.sh); default: a small byte-level one\n"
    "      --force             replace an existing PATH (default: refuse); the new model is built\n"
    "                          beside it and renamed into place when complete\n"
    "  -h, --help              this text\n";

static const char devices_help[] =
    "usage: vkgpt2 devices\n"
    "Lists every Vulkan device with its index (for --device N), type, memory, limits and whether\n"
    "vkgpt2 can use it. Takes no options but -h, --help.\n";

/* The whole of `vkgpt2 --help`. */
static void print_main_help(void)
{
    fputs(synopsis_text, stdout);
    fputc('\n', stdout);
    fputs(generate_help, stdout);
    fputs(more_help, stdout);
}

/* ---- options ---- */

typedef struct opts {
    const char *model;        /* -m */
    const char *prompt;       /* -p */
    const char *prompt_file;  /* -f */
    const char *ids;          /* eval --ids */
    const char *logits_out;   /* eval --logits */
    vkg_sample_params sp;     /* sampling */
    vkg_session_params sess;  /* backend */
    bool json;                /* --json */
    bool profile;             /* --profile */
    const char *trace;        /* --trace FILE */
    bool force;               /* --force: replace an existing --trace / --logits file */
    int parallel;             /* -np / --parallel (0: not given) */
    const char *prompts_file; /* --prompts */
    bool seed_given;          /* -s with a non-negative seed (else one is drawn at random) */
    bool model_given;         /* -m given (else find_model chose) */
} opts;

/* The model to use without -m: DEFAULT_MODEL if it exists, else the first entry of models/ (by
 * name) that looks like a model: a directory with config.json, or a .bin or .gguf file. NULL
 * when there is none; the path is in buf. */
static const char *find_model(char *buf, size_t len)
{
    struct stat sb;
    if (stat(DEFAULT_MODEL, &sb) == 0) {
        snprintf(buf, len, "%s", DEFAULT_MODEL);
        return buf;
    }
    struct dirent **names;
    int n = scandir("models", &names, NULL, alphasort);
    const char *found = NULL;
    for (int i = 0; i < n; i++) {
        const char *e = names[i]->d_name;
        size_t el = strlen(e);
        char path[4096], probe[4200];
        snprintf(path, sizeof path, "models/%s", e);
        snprintf(probe, sizeof probe, "%s/config.json", path);
        bool model = e[0] != '.' && stat(path, &sb) == 0 &&
            ((S_ISDIR(sb.st_mode) && access(probe, R_OK) == 0) ||
             (S_ISREG(sb.st_mode) &&
              ((el > 4 && !strcmp(e + el - 4, ".bin")) || (el > 5 && !strcmp(e + el - 5, ".gguf")))));
        if (model && !found) {
            snprintf(buf, len, "%s", path);
            found = buf;
        }
        free(names[i]);
    }
    if (n >= 0) free(names);
    return found;
}

/* Sets *model to the model find_model chooses when none was given, with a notice when it is not
 * DEFAULT_MODEL. Returns 0, or -1 with a one-line message and a hint when there is none. */
static int resolve_model(const char **model, const char *cmd)
{
    static char buf[4096];
    if (*model) return 0;
    if (!(*model = find_model(buf, sizeof buf))) {
        fprintf(stderr,
                "vkgpt2: %s: no -m given and no model at " DEFAULT_MODEL " or under models/ "
                "(run sh tools/demo.sh, or vkgpt2 synth -o " DEFAULT_MODEL " --size 124M "
                "--type f16, or pass -m PATH)\n",
                cmd);
        return -1;
    }
    if (strcmp(*model, DEFAULT_MODEL))
        fprintf(stderr, "vkgpt2: no -m given: using %s (the first model under models/)\n", *model);
    return 0;
}

/* Parses the flags shared by generate and eval (cmd names the command in messages). Returns 0,
 * 1 for --help, -1 on error. Afterwards the model is chosen (resolve_model), a seed drawn unless
 * one was given, and the thread count capped. */
static int parse_opts(int argc, char **argv, int first, opts *o, const char *cmd)
{
    o->model = NULL;
    o->sp = vkg_sample_defaults();
    o->sess = vkg_session_defaults();
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
#define VAL()                                                                                                \
    do {                                                                                                     \
        if (!(v = cli_value(argc, argv, &i))) return -1;                                                     \
    } while (0)
#define IS(s, l) (!strcmp(a, s) || !strcmp(a, l))
        if (IS("-h", "--help"))
            return 1;
        else if (IS("-m", "--model")) {
            VAL();
            o->model = v;
        } else if (IS("-p", "--prompt")) {
            VAL();
            o->prompt = v;
        } else if (IS("-f", "--file")) {
            VAL();
            o->prompt_file = v;
        } else if (IS("-n", "--n_predict")) {
            VAL();
            if (cli_int(a, v, 0, 1 << 30, &o->sp.n_predict)) return -1;
        } else if (IS("-s", "--seed")) {
            VAL();
            bool random;
            if (cli_seed(a, v, &o->sp.seed, &random)) return -1;
            o->seed_given = !random;
        } else if (IS("-t", "--threads")) {
            VAL();
            if (cli_int(a, v, 1, 1 << 16, &o->sess.n_threads)) return -1;
        } else if (IS("-b", "--batch_size")) {
            VAL();
            if (cli_int(a, v, 1, 1 << 16, &o->sess.n_batch)) return -1;
        } else if (IS("--top_k", "--top-k")) {
            VAL();
            if (cli_int(a, v, 0, 1 << 30, &o->sp.top_k)) return -1;
        } else if (IS("--top_p", "--top-p")) {
            VAL();
            if (cli_float(a, v, 0.0, 1.0, &o->sp.top_p)) return -1;
        } else if (IS("--temp", "--temperature")) {
            VAL();
            if (cli_float(a, v, 0.0, 1e6, &o->sp.temp)) return -1;
        } else if (IS("--repeat-penalty", "--repeat_penalty")) {
            VAL();
            if (cli_float(a, v, 1e-6, 1e6, &o->sp.repeat_penalty)) return -1;
        } else if (IS("--repeat-last-n", "--repeat_last_n")) {
            VAL();
            if (cli_int(a, v, -1, 1 << 30, &o->sp.repeat_last_n)) return -1;
        } else if (!strcmp(a, "--ignore-eos"))
            o->sp.ignore_eos = true;
        else if (!strcmp(a, "--tokens-per-submit")) {
            VAL();
            if (cli_int(a, v, 1, VKG_MAX_TOKENS_PER_SUBMIT, &o->sess.tokens_per_submit)) return -1;
        } else if (!strcmp(a, "--json"))
            o->json = true;
        else if (!strcmp(a, "--profile"))
            o->profile = true;
        else if (!strcmp(a, "--trace")) {
            VAL();
            o->trace = v;
        } else if (!strcmp(a, "--force"))
            o->force = true;
        else if (IS("-np", "--parallel")) {
            VAL();
            if (cli_int(a, v, 1, 4096, &o->parallel)) return -1;
        } else if (!strcmp(a, "--prompts")) {
            VAL();
            o->prompts_file = v;
        } else if (IS("-v", "--verbose"))
            o->sess.verbose = true;
        else if (!strcmp(a, "--device")) {
            VAL();
            if (cli_device(a, v, &o->sess.device, &o->sess.device_name)) return -1;
        } else if (!strcmp(a, "--ids")) {
            VAL();
            o->ids = v;
        } else if (!strcmp(a, "--logits")) {
            VAL();
            o->logits_out = v;
        } else if (!strcmp(a, "--kv")) {
            VAL();
            int k;
            if (cli_choose(a, v, cli_kv_types, &k)) return -1;
            o->sess.kv = (vkg_kv_type)k;
        } else if (!strcmp(a, "--backend")) {
            VAL();
            int b;
            if (cli_choose(a, v, cli_backends, &b)) return -1;
            o->sess.backend = (vkg_backend)b;
        } else {
            cli_unexpected(cmd, a);
            return -1;
        }
#undef VAL
#undef IS
    }
    o->model_given = o->model != NULL;
    if (resolve_model(&o->model, cmd)) return -1;
    if (!o->seed_given) o->sp.seed = cli_random_seed();
    cli_cap_threads(&o->sess.n_threads);
    if (o->sess.backend == VKG_BACKEND_CPU && (o->sess.device >= 0 || o->sess.device_name)) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", o->sess.device);
        fprintf(stderr, "vkgpt2: --device %s is ignored: --backend cpu runs on no Vulkan device\n",
                o->sess.device_name ? o->sess.device_name : idx);
    }
    return 0;
}

/* Loads the model and opens a session; prints errors. */
static int open_session(opts *o, vkg_model **m, vkg_session **s, double *load_ms)
{
    char err[1024];
    double t = vkg_now_ms();
    *m = vkg_model_load(o->model, err, sizeof err);
    if (!*m) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        return -1;
    }
    /* The KV type (f16 on Vulkan, f32 on the CPU) is left to the session: it knows which backend
     * it ended up with. */
    *s = vkg_session_create(*m, &o->sess, err, sizeof err);
    if (!*s) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        vkg_model_free(*m);
        return -1;
    }
    *load_ms = vkg_now_ms() - t;
    return 0;
}

/* ---- generate ---- */

typedef struct gen_out {
    bool json;  /* collect instead of printing */
    char *text; /* collected text */
    size_t len, cap;
} gen_out;

static int on_token(void *user, int32_t id, const char *text, size_t len)
{
    gen_out *g = user;
    (void)id;
    if (interrupted) return 1; /* Ctrl-C: stop before this token */
    if (!g->json) {
        errno = 0;
        if ((len && fwrite(text, 1, len, stdout) != len) || fflush(stdout)) {
            if (errno == EPIPE) stdout_closed = true; /* the reader went away */
            return 1;
        }
        return 0;
    }
    if (g->len + len + 1 > g->cap) {
        size_t cap = (g->len + len + 1) * 2;
        char *t = realloc(g->text, cap);
        if (!t) return 1;
        g->text = t;
        g->cap = cap;
    }
    memcpy(g->text + g->len, text, len);
    g->len += len;
    return 0;
}

static void print_ids(FILE *f, const int32_t *ids, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) fprintf(f, "%s%d", i ? ", " : "", ids[i]);
    fputc(']', f);
}

static int cmd_generate(int argc, char **argv, int first)
{
    opts o = {0};
    int r = parse_opts(argc, argv, first, &o, "generate");
    if (r > 0) { /* `vkgpt2 --help` is the whole page, `vkgpt2 generate --help` this command's */
        if (first == 1)
            print_main_help();
        else
            fputs("usage: vkgpt2 generate [options]   (or: vkgpt2 [options])\n\n", stdout),
                fputs(generate_help, stdout);
        return 0;
    }
    if (r) return 2;
    if ((o.profile || o.trace) && (o.parallel || o.prompts_file)) {
        fprintf(stderr, "vkgpt2: %s profiles single-sequence runs only, not -np/--prompts\n",
                o.profile ? "--profile" : "--trace");
        return 2;
    }
    if (o.prompt && o.prompt_file) {
        fprintf(stderr, "vkgpt2: give -p or -f, not both\n");
        return 2;
    }
    if (o.prompts_file && (o.prompt || o.prompt_file)) {
        fprintf(stderr, "vkgpt2: give --prompts or -p/-f, not both\n");
        return 2;
    }
    char *file_text = NULL;
    size_t plen = 0;
    const char *ptext = o.prompt ? o.prompt : "";
    if (o.prompt_file) {
        if (!(file_text = cli_read_file(o.prompt_file, &plen))) return 1;
        ptext = file_text;
    } else {
        plen = strlen(ptext);
    }
    /* --trace is checked before the model loads: a bad path costs nothing */
    const char *model_input[2] = {o.model, NULL};
    if (o.trace && cli_check_output("--trace", o.trace, o.force ? VKG_OUT_FORCE : 0, model_input)) {
        free(file_text);
        return 1;
    }
    if (o.parallel || o.prompts_file) { /* many sequences at once (cmd_batch.c) */
        install_sigint();
        int brc = cmd_generate_batch(o.model, o.sess, o.sp, ptext, plen, o.prompts_file, o.parallel, o.json,
                                     0, &interrupted, &stdout_closed);
        free(file_text);
        return brc;
    }

    vkg_model *m;
    vkg_session *s;
    double load_ms;
    if (open_session(&o, &m, &s, &load_ms)) {
        free(file_text);
        return 1;
    }

    char err[1024];
    int32_t *pids = NULL, *gen = NULL;
    size_t n_pids = 0, n_gen = 0;
    int rc = 1;
    if ((o.profile || o.trace) && vkg_session_profile(s, err, sizeof err)) {
        fprintf(stderr, "vkgpt2: --profile: %s\n", err);
        goto out;
    }
    double tok_t0 = vkg_now_ms();
    int tok_rc = vkg_tokenize(m, ptext, plen, &pids, &n_pids, err, sizeof err);
    vkg_profile_event(s, "tokenize", tok_t0, vkg_now_ms());
    if (tok_rc) {
        fprintf(stderr, "vkgpt2: prompt%s%s: %s\n", o.prompt_file ? " file " : "",
                o.prompt_file ? o.prompt_file : "", err);
        goto out;
    }
    vkg_model_info info = vkg_model_get_info(m);
    if (n_pids > (size_t)info.n_ctx) {
        fprintf(stderr, "vkgpt2: prompt%s%s: %zu tokens, more than the model's context of %d\n",
                o.prompt_file ? " file " : "", o.prompt_file ? o.prompt_file : "", n_pids, info.n_ctx);
        goto out;
    }
    if (!strcmp(info.format, "synth") || o.sess.verbose)
        fprintf(stderr, "vkgpt2: model %s (%s, %s, %d layers, %d wide)\n", o.model, info.format,
                info.weight_type, info.n_layer, info.n_embd);
    gen_out g = {.json = o.json};
    install_sigint();
    errno = 0;
    if (!o.json && (fwrite(ptext, 1, plen, stdout) != plen || fflush(stdout)) && errno == EPIPE)
        stdout_closed = true;
    if (stdout_closed) {
        rc = EXIT_PIPE_CLOSED;
        goto out;
    }
    vkg_stats st;
    if (vkg_generate(s, pids, n_pids, &o.sp, on_token, &g, &gen, &n_gen, &st, err, sizeof err)) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        free(g.text);
        goto out;
    }
    st.load_ms = load_ms;
    if (stdout_closed) { /* quietly: the reader has all it wanted */
        free(g.text);
        rc = EXIT_PIPE_CLOSED;
        goto out;
    }
    if (o.json) {
        FILE *f = stdout;
        fputs("{\"prompt_ids\": ", f);
        print_ids(f, pids, n_pids);
        fputs(", \"ids\": ", f);
        print_ids(f, gen, n_gen);
        fputs(", \"text\": ", f);
        json_write_string(f, g.text ? g.text : "", g.len);
        fprintf(f, ", \"backend\": \"%s\", \"device\": ", vkg_session_backend(s));
        const char *dev = vkg_session_device(s);
        json_write_string(f, dev, strlen(dev));
        fprintf(f, ", \"seed\": %llu", (unsigned long long)o.sp.seed);
        fprintf(f,
                ", \"timings\": {\"load_ms\": %.3f, \"prompt_tokens\": %d, \"prompt_ms\": %.3f, "
                "\"decode_tokens\": %d, \"decode_ms_per_token\": %.4f, \"sample_ms\": %.3f, "
                "\"total_ms\": %.3f}",
                st.load_ms, st.prompt_tokens, st.prompt_ms, st.decode_tokens, st.decode_ms_per_token,
                st.sample_ms, st.total_ms + st.load_ms);
        fprintf(f, ", \"memory\": {\"weights_bytes\": %zu, \"kv_bytes\": %zu, \"scratch_bytes\": %zu}",
                st.weights_bytes, st.kv_bytes, st.scratch_bytes);
        fprintf(f,
                ", \"counters\": {\"decode_cmdbuf_records\": %llu, \"prefill_cmdbuf_records\": %llu, "
                "\"submits\": %llu, \"dispatches_per_token\": %llu, \"barriers_per_token\": %llu, "
                "\"readback_bytes_per_token\": %llu, \"device_memory_bytes\": %llu}",
                (unsigned long long)st.decode_cmdbuf_records, (unsigned long long)st.prefill_cmdbuf_records,
                (unsigned long long)st.submits, (unsigned long long)st.dispatches_per_token,
                (unsigned long long)st.barriers_per_token, (unsigned long long)st.readback_bytes_per_token,
                (unsigned long long)st.device_memory_bytes);
        if (o.profile) {
            fputs(", \"profile\": ", f);
            vkg_profile_json(s, f);
        }
        fprintf(f, ", \"stopped\": \"%s\"}\n",
                interrupted              ? "interrupted"
                    : st.hit_eos         ? "eos"
                    : st.hit_context_end ? "context"
                                         : "n_predict");
    } else {
        fputc('\n', stdout);
    }
    free(g.text);
    fflush(stdout);
    if (cli_stdout_errno() == EPIPE) { /* the reader left before the end: quietly */
        rc = EXIT_PIPE_CLOSED;
        goto out;
    }
    fprintf(stderr, "\n%s: backend %s on %s\n", "vkgpt2", vkg_session_backend(s), vkg_session_device(s));
    fprintf(stderr, "%s:     load time = %9.2f ms\n", "vkgpt2", st.load_ms);
    fprintf(stderr, "%s:   prompt eval = %9.2f ms / %d %s (%.2f ms/token, %.1f tok/s)\n", "vkgpt2",
            st.prompt_ms, st.prompt_tokens, cli_plural(st.prompt_tokens, "token", "tokens"),
            st.prompt_tokens ? st.prompt_ms / st.prompt_tokens : 0,
            st.prompt_ms > 0 ? st.prompt_tokens * 1e3 / st.prompt_ms : 0);
    fprintf(stderr, "%s:        decode = %9.2f ms / %d %s (%.2f ms/token, %.1f tok/s)\n", "vkgpt2",
            st.decode_ms, st.decode_tokens, cli_plural(st.decode_tokens, "token", "tokens"),
            st.decode_ms_per_token, st.decode_ms > 0 ? st.decode_tokens * 1e3 / st.decode_ms : 0);
    fprintf(stderr, "%s:   sample time = %9.2f ms\n", "vkgpt2", st.sample_ms);
    fprintf(stderr, "%s:    total time = %9.2f ms\n", "vkgpt2", st.total_ms + st.load_ms);
    fprintf(stderr, "%s:        memory = weights %.1f MiB, KV cache %.1f MiB, scratch %.1f MiB\n", "vkgpt2",
            st.weights_bytes / 1048576.0, st.kv_bytes / 1048576.0, st.scratch_bytes / 1048576.0);
    fprintf(stderr, "%s:          seed = %llu (-s %llu repeats this run)\n", "vkgpt2",
            (unsigned long long)o.sp.seed, (unsigned long long)o.sp.seed);
    /* The counters are the Vulkan backend's (command buffers, dispatches): none on the CPU. */
    if (o.sess.verbose && strcmp(vkg_session_backend(s), "cpu"))
        fprintf(stderr,
                "%s:      counters = decode records %llu, prefill records %llu, submits %llu, "
                "dispatches/token %llu, barriers/token %llu, readback bytes/token %llu\n",
                "vkgpt2", (unsigned long long)st.decode_cmdbuf_records,
                (unsigned long long)st.prefill_cmdbuf_records, (unsigned long long)st.submits,
                (unsigned long long)st.dispatches_per_token, (unsigned long long)st.barriers_per_token,
                (unsigned long long)st.readback_bytes_per_token);
    if (o.profile) vkg_profile_print(s, stderr);
    int trc;
    if (o.trace && (trc = vkg_profile_trace(s, o.trace, o.force ? VKG_OUT_FORCE : 0, err, sizeof err))) {
        cli_output_error(trc, "--trace", o.trace, err);
        goto out;
    }
    rc = 0;
    if (interrupted) {
        fprintf(stderr, "vkgpt2: interrupted after %d generated %s\n", (int)n_gen,
                cli_plural((long)n_gen, "token", "tokens"));
        rc = EXIT_INTERRUPTED;
    }
out:
    vkg_free(pids);
    vkg_free(gen);
    vkg_session_free(s);
    vkg_model_free(m);
    free(file_text);
    return rc;
}

/* ---- eval ---- */

/* Parses "ID ID ..." (spaces, commas or newlines between). */
static int parse_ids(const char *what, const char *s, int32_t **ids, size_t *n)
{
    size_t cap = 16;
    *n = 0;
    *ids = malloc(cap * sizeof **ids);
    if (!*ids) return -1;
    while (*s) {
        while (*s == ' ' || *s == ',' || *s == '\n' || *s == '\t' || *s == '\r') s++;
        if (!*s) break;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX ||
            (*end && *end != ' ' && *end != ',' && *end != '\n' && *end != '\t' && *end != '\r')) {
            int wl = (int)strcspn(s, " ,\n\t\r");
            fprintf(stderr, "vkgpt2: %s: '%.*s' is not a token id\n", what, wl > 20 ? 20 : wl, s);
            free(*ids);
            return -1;
        }
        if (*n == cap) {
            int32_t *t = realloc(*ids, (cap *= 2) * sizeof *t);
            if (!t) {
                free(*ids);
                return -1;
            }
            *ids = t;
        }
        (*ids)[(*n)++] = (int32_t)v;
        s = end;
    }
    return 0;
}

static int cmd_eval(int argc, char **argv, int first)
{
    opts o = {0};
    int r = parse_opts(argc, argv, first, &o, "eval");
    if (r) {
        if (r > 0) fputs(eval_help, stdout);
        return r > 0 ? 0 : 2;
    }
    if (!o.ids || !o.logits_out) {
        fprintf(stderr, "vkgpt2: eval needs --ids \"ID ...\" and --logits OUT\n");
        return 2;
    }
    int32_t *ids;
    size_t n;
    if (parse_ids("--ids", o.ids, &ids, &n)) return 2;
    if (!n) {
        fprintf(stderr, "vkgpt2: --ids: no token ids given\n");
        free(ids);
        return 2;
    }
    /* the outputs are checked before the model loads: a bad path costs nothing */
    const char *model_input[2] = {o.model, NULL};
    const unsigned oflags = o.force ? VKG_OUT_FORCE : 0;
    const bool to_stdout = !strcmp(o.logits_out, "-");
    if ((!to_stdout && cli_check_output("--logits", o.logits_out, oflags, model_input)) ||
        (o.trace && cli_check_output("--trace", o.trace, oflags, model_input))) {
        free(ids);
        return 1;
    }
    vkg_model *m;
    vkg_session *s;
    double load_ms;
    if (open_session(&o, &m, &s, &load_ms)) {
        free(ids);
        return 1;
    }
    vkg_model_info info = vkg_model_get_info(m);
    int rc = 1;
    char err[1024];
    float *logits = NULL;
    if ((o.profile || o.trace) && vkg_session_profile(s, err, sizeof err)) {
        fprintf(stderr, "vkgpt2: --profile: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= info.n_vocab) {
            fprintf(stderr, "vkgpt2: --ids: token %d is outside the vocabulary (0..%d)\n", ids[i],
                    info.n_vocab - 1);
            goto out;
        }
    if (n > (size_t)info.n_ctx) {
        fprintf(stderr, "vkgpt2: --ids: %zu tokens, more than the model's context of %d\n", n, info.n_ctx);
        goto out;
    }
    logits = malloc(n * (size_t)info.n_vocab * sizeof *logits);
    if (!logits) {
        fprintf(stderr, "vkgpt2: out of memory for %zu x %d logits\n", n, info.n_vocab);
        goto out;
    }
    if (vkg_eval(s, ids, n, logits, err, sizeof err)) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        goto out;
    }
    /* to a temporary beside the file, renamed into place when complete */
    vkg_output *lo = to_stdout ? NULL : vkg_output_open(o.logits_out, oflags, err, sizeof err);
    if (!to_stdout && !lo) {
        cli_output_error(-1, "--logits", o.logits_out, err);
        goto out;
    }
    FILE *f = lo ? vkg_output_file(lo) : stdout;
    size_t w = fwrite(logits, sizeof *logits, n * (size_t)info.n_vocab, f);
    int wrc = 0;
    if (lo && w == n * (size_t)info.n_vocab)
        wrc = vkg_output_commit(lo, err, sizeof err);
    else if (lo) {
        vkg_output_abort(lo);
        wrc = -1;
        snprintf(err, sizeof err, "%s: write failed: %s", o.logits_out, strerror(errno));
    } else if (fflush(f) || ferror(f) || w != n * (size_t)info.n_vocab) {
        int why = cli_stdout_errno();
        if (why == EPIPE) {
            rc = EXIT_PIPE_CLOSED;
            goto out;
        } /* the reader left: quietly */
        wrc = -1;
        snprintf(err, sizeof err, "-: write failed: %s", strerror(why ? why : EIO));
    }
    if (wrc) {
        cli_output_error(wrc, "--logits", o.logits_out, err);
        goto out;
    }
    fprintf(stderr, "vkgpt2: %zu x %d logits written to %s (backend %s)\n", n, info.n_vocab, o.logits_out,
            vkg_session_backend(s));
    if (o.profile) vkg_profile_print(s, stderr);
    if (o.profile && o.json && f != stdout) {
        fputs("{\"profile\": ", stdout);
        vkg_profile_json(s, stdout);
        fputs("}\n", stdout);
    }
    int trc;
    if (o.trace && (trc = vkg_profile_trace(s, o.trace, oflags, err, sizeof err))) {
        cli_output_error(trc, "--trace", o.trace, err);
        goto out;
    }
    rc = 0;
out:
    free(logits);
    free(ids);
    vkg_session_free(s);
    vkg_model_free(m);
    return rc;
}

/* ---- tokenize / detokenize ---- */

static int cmd_tokens(int argc, char **argv, int first, bool encode)
{
    const char *model = NULL, *cmd = encode ? "tokenize" : "detokenize";
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) {
            if (!(model = cli_value(argc, argv, &i))) return 2;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(encode ? tokenize_help : detokenize_help, stdout);
            return 0;
        } else {
            cli_unexpected(cmd, argv[i]);
            return 2;
        }
    }
    if (resolve_model(&model, cmd)) return 1;
    char err[1024];
    vkg_model *m = vkg_vocab_load(model, err, sizeof err);
    if (!m) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        return 1;
    }
    size_t len;
    char *in = cli_read_file("-", &len);
    int rc = 1;
    if (!in) goto out;
    if (encode) {
        int32_t *ids;
        size_t n;
        if (vkg_tokenize(m, in, len, &ids, &n, err, sizeof err)) {
            fprintf(stderr, "vkgpt2: stdin: %s\n", err);
            goto out;
        }
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        putchar('\n');
        vkg_free(ids);
    } else {
        int32_t *ids;
        size_t n, tlen;
        char *text;
        if (parse_ids("stdin", in, &ids, &n)) goto out;
        if (vkg_detokenize(m, ids, n, &text, &tlen, err, sizeof err)) {
            fprintf(stderr, "vkgpt2: stdin: %s\n", err);
            free(ids);
            goto out;
        }
        fwrite(text, 1, tlen, stdout);
        vkg_free(text);
        free(ids);
    }
    rc = 0; /* main checks that stdout took it all */
out:
    free(in);
    vkg_model_free(m);
    return rc;
}

/* ---- synth ---- */

static int cmd_synth(int argc, char **argv, int first)
{
    const char *out = NULL;
    unsigned flags = 0;
    /* format NULL: from the name (.gguf GGUF, .bin ggml, else a Hugging Face directory) */
    vkg_synth_params p = {.size = "tiny", .format = NULL, .type = "f32", .vocab_dir = NULL, .seed = 1};
    static const char *const valued[] = {"-o",     "--output", "--size", "--format",
                                         "--type", "--vocab",  "--seed", NULL};
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(synth_help, stdout);
            return 0;
        }
        if (!strcmp(a, "--force")) {
            flags |= VKG_OUT_FORCE;
            continue;
        }
        bool known = false;
        for (int k = 0; valued[k]; k++) known |= !strcmp(a, valued[k]);
        if (!known) {
            cli_unexpected("synth", a);
            return 2;
        }
        if (!(v = cli_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            out = v;
        else if (!strcmp(a, "--size"))
            p.size = v;
        else if (!strcmp(a, "--format"))
            p.format = v;
        else if (!strcmp(a, "--type"))
            p.type = v;
        else if (!strcmp(a, "--vocab"))
            p.vocab_dir = v;
        else if (!strcmp(a, "--seed")) {
            if (cli_u64(a, v, &p.seed)) return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "vkgpt2: synth needs -o PATH\n");
        return 2;
    }
    char err[1024];
    cli_cleanup_on_signals();
    int rc = vkg_synth(out, &p, flags, err, sizeof err);
    if (rc) {
        cli_output_error(rc, NULL, out, err);
        return 1;
    }
    cli_progress_clear();
    size_t ol = strlen(out); /* the format the library chose from the name when none was given */
    const char *fmt = p.format                      ? p.format
        : ol >= 5 && !strcmp(out + ol - 5, ".gguf") ? "gguf"
        : ol >= 4 && !strcmp(out + ol - 4, ".bin")  ? "ggml"
                                                    : "hf";
    fprintf(stderr, "vkgpt2: wrote synthetic GPT-2 %s (%s, %s) to %s\n", p.size, fmt, p.type, out);
    return 0;
}

/* ---- devices ---- */

static int cmd_devices(int argc, char **argv, int first)
{
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(devices_help, stdout);
            return 0;
        }
        fprintf(stderr, "vkgpt2: devices takes no arguments ('%s'; see vkgpt2 devices --help)\n", argv[i]);
        return 2;
    }
    char err[1024];
    if (vkg_list_devices(stdout, err, sizeof err)) {
        fprintf(stderr, "vkgpt2: %s\n", err);
        return 1;
    }
    return 0;
}

/* ---- main ---- */

static int dispatch(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "generate")) return cmd_generate(argc, argv, 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc, argv, 2);
    if (!strcmp(cmd, "tokenize")) return cmd_tokens(argc, argv, 2, true);
    if (!strcmp(cmd, "detokenize")) return cmd_tokens(argc, argv, 2, false);
    if (!strcmp(cmd, "synth")) return cmd_synth(argc, argv, 2);
    if (!strcmp(cmd, "devices")) return cmd_devices(argc, argv, 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc, argv, 2);
    if (!strcmp(cmd, "convert")) return cmd_convert(argc, argv, 2);
    if (!strcmp(cmd, "quantize")) return cmd_quantize(argc, argv, 2);
    if (!strcmp(cmd, "kbench")) return cmd_kbench(argc, argv, 2);
    if (!strcmp(cmd, "selftest")) return cmd_selftest(argc, argv, 2);
    if (!strcmp(cmd, "help")) {
        print_main_help();
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        if (argc > 2) {
            cli_unexpected("--version", argv[2]);
            return 2;
        }
        printf("vkgpt2 %s (libvkgpt2 %s)\n", VKG_VERSION, vkg_version());
        return 0;
    }
    if (argc > 1 && cmd[0] != '-') {
        fprintf(stderr, "vkgpt2: unknown command '%s' (see vkgpt2 --help)\n", cmd);
        return 2;
    }
    return cmd_generate(argc, argv, 1); /* ggml style: flags only */
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN); /* a closed reader shows up as EPIPE (see "signals" above) */
    cli_stdout_init();
    vkg_set_notice_handler(cli_notice, NULL); /* the library's notices, printed here */
    if (cli_split_equals(&argc, &argv)) return 2;
    cli_progress_start(); /* progress of long steps on a terminal's stderr (cli_out.c) */
    int rc = dispatch(argc, argv);
    /* One rule for every command: output that never arrived (a full disk, a closed descriptor) is
     * a failure, with the reason; a reader that went away (EPIPE) is a quiet stop with 141. */
    fflush(stdout);
    int why = cli_stdout_errno();
    if (stdout_closed || why == EPIPE) return EXIT_PIPE_CLOSED;
    if (why) {
        if (!rc) fprintf(stderr, "vkgpt2: stdout: write failed: %s\n", strerror(why));
        return rc ? rc : 1;
    }
    return rc;
}
