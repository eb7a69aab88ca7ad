//===- GGUFTypesTest.cpp - Every ggml tensor type by name and geometry ----===//
#include "lumen/GGUF/GGUFTypes.h"

#include "gtest/gtest.h"

namespace {

using namespace lumen::gguf;

TEST(GGUFTypesTest, EveryGgmlTypeIdIsKnown) {
  // ggml numbers its types 0-39; 4 and 5 (Q4_2, Q4_3) were removed before GGUF.
  for (uint32_t Id = 0; Id <= 39; ++Id) {
    std::optional<TensorTypeTraits> T = tensorTypeTraits(Id);
    if (Id == 4 || Id == 5) {
      EXPECT_FALSE(T) << Id;
      continue;
    }
    ASSERT_TRUE(T) << "type id " << Id;
    EXPECT_FALSE(T->Name.empty());
    EXPECT_GT(T->BlockSize, 0u);
    EXPECT_GT(T->TypeSize, 0u);
    EXPECT_EQ(tensorTypeFromName(T->Name), static_cast<TensorType>(Id)) << T->Name;
  }
  EXPECT_FALSE(tensorTypeTraits(40));
  EXPECT_FALSE(tensorTypeTraits(1000));
}

TEST(GGUFTypesTest, BlockGeometryAsGgmlDefinesIt) {
  // Bytes per block from ggml-common.h's block structs, worked out by hand.
  struct Row { TensorType Type; const char *Name; uint32_t Block, Bytes; };
  for (Row R : {Row{TensorType::Q4_0, "Q4_0", 32, 2 + 16}, {TensorType::Q5_1, "Q5_1", 32, 2 + 2 + 4 + 16},
                {TensorType::Q2_K, "Q2_K", 256, 16 + 64 + 2 + 2}, {TensorType::Q3_K, "Q3_K", 256, 32 + 64 + 12 + 2},
                {TensorType::Q4_K, "Q4_K", 256, 2 + 2 + 12 + 128}, {TensorType::Q5_K, "Q5_K", 256, 2 + 2 + 12 + 32 + 128},
                {TensorType::Q6_K, "Q6_K", 256, 128 + 64 + 16 + 2}, {TensorType::IQ4_NL, "IQ4_NL", 32, 2 + 16},
                {TensorType::IQ4_XS, "IQ4_XS", 256, 2 + 2 + 4 + 128}, {TensorType::IQ3_S, "IQ3_S", 256, 2 + 64 + 8 + 32 + 4},
                {TensorType::IQ1_M, "IQ1_M", 256, 32 + 16 + 8}, {TensorType::TQ1_0, "TQ1_0", 256, 48 + 4 + 2},
                {TensorType::BF16, "BF16", 1, 2}, {TensorType::MXFP4, "MXFP4", 32, 1 + 16}}) {
    TensorTypeTraits T = tensorTypeTraits(R.Type);
    EXPECT_EQ(T.Name, R.Name);
    EXPECT_EQ(T.BlockSize, R.Block) << R.Name;
    EXPECT_EQ(T.TypeSize, R.Bytes) << R.Name;
  }
}

} // namespace
