// libgrpo_sentencepiece.so: SentencePiece behind the C interface of spm_module.h.
#include "spm_module.h"

#include <sentencepiece_processor.h>

#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

struct grpo_spm {
  sentencepiece::SentencePieceProcessor sp;
};

namespace {

int fail(char* error, size_t error_size, const std::string& message) {
  if (error != nullptr && error_size > 0) {
    const size_t n = std::min(message.size(), error_size - 1);
    std::memcpy(error, message.data(), n);
    error[n] = '\0';
  }
  return 1;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) grpo_spm* grpo_spm_load(const char* bytes, size_t size, char* error,
                                                                size_t error_size) {
  try {
    // NB: owned until returned, so an exception from the load (bad_alloc on a
    // model that claims a huge size) frees it too.
    auto model = std::make_unique<grpo_spm>();
    const auto status = model->sp.LoadFromSerializedProto(std::string(bytes, size));
    if (!status.ok()) {
      fail(error, error_size, status.ToString());
      return nullptr;
    }
    return model.release();
  } catch (const std::exception& e) {
    fail(error, error_size, e.what());
    return nullptr;
  }
}

__attribute__((visibility("default"))) void grpo_spm_free(grpo_spm* model) { delete model; }

__attribute__((visibility("default"))) void grpo_spm_get_info(const grpo_spm* model, grpo_spm_info* info) {
  info->piece_size = model->sp.GetPieceSize();
  info->bos_id = model->sp.bos_id();
  info->eos_id = model->sp.eos_id();
  info->pad_id = model->sp.pad_id();
  info->unk_id = model->sp.unk_id();
}

__attribute__((visibility("default"))) int grpo_spm_encode(const grpo_spm* model, const char* text, size_t size,
                                                           grpo_spm_piece_sink sink, void* ctx, char* error,
                                                           size_t error_size) {
  try {
    const auto pieces = model->sp.EncodeAsImmutableProto(std::string(text, size));
    for (size_t i = 0; i < pieces.pieces_size(); ++i) {
      const auto p = pieces.pieces(static_cast<int>(i));
      sink(ctx, static_cast<int>(p.id()), p.begin());
    }
    return 0;
  } catch (const std::exception& e) {
    return fail(error, error_size, e.what());
  }
}

__attribute__((visibility("default"))) int grpo_spm_decode(const grpo_spm* model, const int* ids, size_t count,
                                                           grpo_spm_sink sink, void* ctx, char* error,
                                                           size_t error_size) {
  try {
    std::string text;
    const auto status = model->sp.Decode(std::vector<int>(ids, ids + count), &text);
    if (!status.ok()) return fail(error, error_size, status.ToString());
    sink(ctx, text.data(), text.size());
    return 0;
  } catch (const std::exception& e) {
    return fail(error, error_size, e.what());
  }
}

__attribute__((visibility("default"))) void grpo_spm_id_to_piece(const grpo_spm* model, int id, grpo_spm_sink sink,
                                                                 void* ctx) {
  const std::string& piece = model->sp.IdToPiece(id);
  sink(ctx, piece.data(), piece.size());
}

__attribute__((visibility("default"))) int grpo_spm_piece_to_id(const grpo_spm* model, const char* piece,
                                                                size_t size) {
  const std::string spelling(piece, size);
  const int id = model->sp.PieceToId(spelling);
  // PieceToId answers unk_id for any unknown spelling.
  if (id < 0 || (id == model->sp.unk_id() && model->sp.IdToPiece(id) != spelling)) return -1;
  return id;
}

__attribute__((visibility("default"))) int grpo_spm_kind(const grpo_spm* model, int id) {
  return (model->sp.IsControl(id) ? GRPO_SPM_CONTROL : 0) | (model->sp.IsUnknown(id) ? GRPO_SPM_UNKNOWN : 0) |
         (model->sp.IsByte(id) ? GRPO_SPM_BYTE : 0);
}

}  // extern "C"
