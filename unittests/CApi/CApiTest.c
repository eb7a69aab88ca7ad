/*===- CApiTest.c - lumen/lumen.h from C ----------------------------------===*/
#include "lumen/lumen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int Failures = 0;
#define CHECK(Cond)                                                                                \
  do {                                                                                             \
    if (!(Cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #Cond);                   \
      ++Failures;                                                                                  \
    }                                                                                              \
  } while (0)

struct Collected {
  int Count;
  int32_t Ids[64];
  char Text[4096];
  size_t Length;
  int StopAfter;
};

static int onToken(void *User, int32_t Token, const char *Text, size_t Length) {
  struct Collected *C = (struct Collected *)User;
  if (Token >= 0 && C->Count < 64)
    C->Ids[C->Count++] = Token;
  if (C->Length + Length < sizeof(C->Text)) {
    memcpy(C->Text + C->Length, Text, Length);
    C->Length += Length;
  }
  return C->StopAfter == 0 || C->Count < C->StopAfter;
}

int main(int Argc, char **Argv) {
  if (Argc < 2) {
    fprintf(stderr, "usage: CApiTest MODEL.gguf\n");
    return 2;
  }
  FILE *F = fopen(Argv[1], "rb");
  if (!F) {
    printf("fixture %s not found: skipped\n", Argv[1]);
    return 77; /* CTest SKIP_RETURN_CODE */
  }
  fclose(F);

  char *Error = NULL;
  CHECK(lumen_model_open("/nonexistent.gguf", &Error) == NULL);
  CHECK(Error != NULL && strstr(Error, "cannot open") != NULL);
  lumen_free(Error);

  lumen_model *M = lumen_model_open(Argv[1], &Error);
  CHECK(M != NULL);
  if (!M) {
    fprintf(stderr, "%s\n", Error);
    return 1;
  }
  int32_t Ids[8];
  CHECK(lumen_tokenize(M, "Hello world", Ids, 8, NULL) == 2);
  CHECK(Ids[0] == 9707 && Ids[1] == 1879);
  CHECK(lumen_tokenize(M, "Hello world", NULL, 0, NULL) == 2);

  lumen_generate_params P = lumen_default_params();
  P.temperature = 0;
  P.max_tokens = 24;
  P.chat = 0;
  P.threads = 1;
  struct Collected C;
  memset(&C, 0, sizeof C);
  int64_t N = lumen_generate(M, "Hello", &P, onToken, &C, &Error);
  CHECK(N == 24);
  /* The fixture's llama.cpp reference: greedy after "Hello". */
  CHECK(C.Count == 24 && C.Ids[0] == 55518 && C.Ids[1] == 58822 && C.Ids[9] == 97719);
  CHECK(C.Length > 0);

  struct Collected Stop;
  memset(&Stop, 0, sizeof Stop);
  Stop.StopAfter = 3;
  CHECK(lumen_generate(M, "Hello", &P, onToken, &Stop, NULL) == 3);

  P.top_p = 0; /* Invalid. */
  CHECK(lumen_generate(M, "Hello", &P, onToken, &Stop, &Error) == -1);
  CHECK(Error != NULL && strstr(Error, "top-p") != NULL);
  lumen_free(Error);
  lumen_model_free(M);
  printf("%s\n", Failures ? "FAILED" : "ok");
  return Failures ? 1 : 0;
}
