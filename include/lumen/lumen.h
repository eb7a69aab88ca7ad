/*===- lumen/lumen.h - C API --------------------------------------*- C -*-===*\
 *
 * Open a GGUF model (Qwen2/Qwen2.5, Qwen3, Llama 3), tokenize, and generate
 * text with a per-token callback, for hosts that are not C++. Every
 * function is thread-compatible: one lumen_model may serve several threads
 * if each call that generates uses its own model handle or is serialised by
 * the caller.
 *
 * Errors: functions that can fail return NULL or a negative value and, when
 * `error` is non-NULL, store a message the caller frees with lumen_free.
 *
\*===----------------------------------------------------------------------===*/
#ifndef LUMEN_LUMEN_H
#define LUMEN_LUMEN_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define LUMEN_C_API __attribute__((visibility("default")))
#else
#define LUMEN_C_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lumen_model lumen_model;

/* Loads the model and prepares the JIT (kernels compile on first use; the
 * object cache in $LUMEN_CACHE_DIR or ~/.cache/lumen/kernels is used). */
LUMEN_C_API lumen_model *lumen_model_open(const char *path, char **error);
LUMEN_C_API void lumen_model_free(lumen_model *model);

/* Token ids of `text` (special tokens such as <|im_start|> parsed). Writes at
 * most `capacity` ids and returns how many the text has (call again with a
 * larger buffer if that is more than capacity), or -1 on error. */
LUMEN_C_API int64_t lumen_tokenize(const lumen_model *model, const char *text, int32_t *ids,
                                   int64_t capacity, char **error);

typedef struct lumen_generate_params {
  int64_t max_tokens;   /* tokens to generate at most */
  float temperature;    /* 0: greedy */
  int32_t top_k;        /* 0: off */
  float top_p;          /* 1: off */
  float min_p;          /* 0: off */
  float repeat_penalty; /* 1: off */
  uint64_t seed;        /* LUMEN_SEED_RANDOM: a new random seed for each call */
  uint32_t threads;     /* 0: all cores */
  int64_t context;      /* KV cache size in tokens */
  int chat;             /* non-zero: wrap the prompt in the model's chat template */
} lumen_generate_params;

/* The seed value that asks for a random seed, as lumen-jit run does without --seed. */
#define LUMEN_SEED_RANDOM UINT64_MAX

/* Defaults as lumen-jit run uses them (a random seed: LUMEN_SEED_RANDOM). */
LUMEN_C_API lumen_generate_params lumen_default_params(void);

/* Called for every generated token with its text (UTF-8, never a broken
 * character; may be empty). Return non-zero to go on, 0 to stop. */
typedef int (*lumen_token_callback)(void *user, int32_t token, const char *text, size_t length);

/* Generates from `prompt`; returns the number of tokens generated, or -1. */
LUMEN_C_API int64_t lumen_generate(lumen_model *model, const char *prompt,
                                   const lumen_generate_params *params, lumen_token_callback callback,
                                   void *user, char **error);

LUMEN_C_API void lumen_free(void *pointer);

#ifdef __cplusplus
}
#endif

#endif
