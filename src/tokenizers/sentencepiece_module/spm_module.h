// The C interface of libgrpo_sentencepiece.so, the module through which grpo
// uses the SentencePiece library. Debian's libsentencepiece carries its own
// copy of protobuf-lite with exported symbols, which collides with the
// libprotobuf that LibTorch loads (the process crashes while loading). So the
// library lives in a module that libgrpo opens with RTLD_LOCAL | RTLD_DEEPBIND:
// SentencePiece binds to its own protobuf, LibTorch to the system one, and only
// plain C types cross between them. No exception crosses this interface: a
// failure returns nonzero (or null) with a message in `error`.
#pragma once

#include <stddef.h>

extern "C" {

typedef struct grpo_spm grpo_spm;
// Receives bytes (a decoded text, a piece's spelling).
typedef void (*grpo_spm_sink)(void* ctx, const char* data, size_t size);
// Receives one encoded piece: its id and the byte offset of its surface in the input.
typedef void (*grpo_spm_piece_sink)(void* ctx, int id, unsigned begin);

enum { GRPO_SPM_CONTROL = 1, GRPO_SPM_UNKNOWN = 2, GRPO_SPM_BYTE = 4 };

struct grpo_spm_info {
  int piece_size, bos_id, eos_id, pad_id, unk_id;  // -1 = none
};

// A model from the bytes of a tokenizer.model; null on failure.
grpo_spm* grpo_spm_load(const char* bytes, size_t size, char* error, size_t error_size);
void grpo_spm_free(grpo_spm* model);
void grpo_spm_get_info(const grpo_spm* model, grpo_spm_info* info);
int grpo_spm_encode(const grpo_spm* model, const char* text, size_t size, grpo_spm_piece_sink sink, void* ctx,
                    char* error, size_t error_size);
int grpo_spm_decode(const grpo_spm* model, const int* ids, size_t count, grpo_spm_sink sink, void* ctx,
                    char* error, size_t error_size);
// The spelling of an id in [0, piece_size).
void grpo_spm_id_to_piece(const grpo_spm* model, int id, grpo_spm_sink sink, void* ctx);
// The id of a piece, or -1 when there is none with exactly this spelling.
int grpo_spm_piece_to_id(const grpo_spm* model, const char* piece, size_t size);
// GRPO_SPM_* flags of an id in [0, piece_size).
int grpo_spm_kind(const grpo_spm* model, int id);

}  // extern "C"
