//===- GGUFFile.cpp - Validating GGUF reader -------------------------------===//
#include "lumen/GGUF/GGUFFile.h"

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace lumen::gguf {

namespace {
constexpr uint32_t kMagic = 0x46554747; // "GGUF" little-endian.
constexpr unsigned kMaxDims = 4;
constexpr unsigned kMaxArrayDepth = 8;
// Smallest encodings, used to reject counts that cannot fit in what is left.
constexpr uint64_t kMinKVBytes = 8 + 4 + 1;             // Empty key, type, u8.
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8; // 1-D, empty name.
constexpr uint64_t kMinStringBytes = 8;
constexpr uint64_t kMinArrayBytes = 4 + 8;

template <typename T> T loadLE(const uint8_t *P) {
  T V;
  std::memcpy(&V, P, sizeof(T)); // x86-64 only: the host is little-endian.
  return V;
}
} // namespace

/// Reads the header, metadata and tensor infos with every access bounded.
class Parser {
public:
  Parser(GGUFFile &F) : F(F), Data(F.Bytes.data()), Size(F.Bytes.size()) {}

  absl::Status run();

private:
  absl::Status error(uint64_t At, const std::string &What) const {
    return absl::InvalidArgumentError(absl::StrFormat("%s: at byte %d: %s", F.Name, At, What));
  }
  uint64_t remaining() const { return Size - Pos; }
  absl::Status need(uint64_t N, std::string_view What) const {
    if (N > remaining())
      return error(Pos, absl::StrFormat("truncated: %s needs %d bytes, %d left", What, N,
                                        remaining()));
    return absl::OkStatus();
  }
  template <typename T> absl::StatusOr<T> read(std::string_view What) {
    if (absl::Status S = need(sizeof(T), What); !S.ok())
      return S;
    T V = loadLE<T>(Data + Pos);
    Pos += sizeof(T);
    return V;
  }
  absl::StatusOr<std::string_view> readString(std::string_view What);
  absl::Status readValue(Value &V, ValueType T, unsigned Depth);
  absl::Status readArray(Value &V, unsigned Depth);
  absl::Status readTensorInfo(TensorInfo &T);
  absl::Status layoutTensors(const std::vector<uint64_t> &InfoPos);

  GGUFFile &F;
  const uint8_t *Data;
  uint64_t Size;
  uint64_t Pos = 0;
};

absl::StatusOr<std::string_view> Parser::readString(std::string_view What) {
  uint64_t Start = Pos;
  absl::StatusOr<uint64_t> Len = read<uint64_t>(What);
  if (!Len.ok())
    return Len.status();
  if (*Len > remaining())
    return error(Start, absl::StrFormat("%s: string length %d runs past the end of the file "
                                        "(%d bytes left)",
                                        What, *Len, remaining()));
  std::string_view S(reinterpret_cast<const char *>(Data + Pos), *Len);
  Pos += *Len;
  return S;
}

absl::Status Parser::readValue(Value &V, ValueType T, unsigned Depth) {
  V.Type = T;
  switch (T) {
  case ValueType::String: {
    absl::StatusOr<std::string_view> S = readString("string value");
    if (!S.ok())
      return S.status();
    V.String = *S;
    return absl::OkStatus();
  }
  case ValueType::Array:
    return readArray(V, Depth + 1);
  default: {
    unsigned N = valueTypeSize(T);
    if (absl::Status S = need(N, valueTypeName(T)); !S.ok())
      return S;
    uint64_t Bits = 0;
    std::memcpy(&Bits, Data + Pos, N);
    // Sign-extend signed integers so Bits is their 64-bit two's complement.
    if (T == ValueType::I8) Bits = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int8_t>(Bits)));
    if (T == ValueType::I16) Bits = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int16_t>(Bits)));
    if (T == ValueType::I32) Bits = static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(Bits)));
    if (T == ValueType::Bool && Bits > 1)
      return error(Pos, absl::StrFormat("bool value %d is neither 0 nor 1", Bits));
    V.Bits = Bits;
    Pos += N;
    return absl::OkStatus();
  }
  }
}

absl::Status Parser::readArray(Value &V, unsigned Depth) {
  if (Depth > kMaxArrayDepth)
    return error(Pos, absl::StrFormat("arrays nested deeper than %d levels", kMaxArrayDepth));
  uint64_t Start = Pos;
  absl::StatusOr<uint32_t> RawElem = read<uint32_t>("array element type");
  if (!RawElem.ok())
    return RawElem.status();
  if (!isValidValueType(*RawElem))
    return error(Start, absl::StrFormat("unknown array element type %d", *RawElem));
  V.ElementType = static_cast<ValueType>(*RawElem);
  absl::StatusOr<uint64_t> Count = read<uint64_t>("array length");
  if (!Count.ok())
    return Count.status();
  V.Count = *Count;
  uint64_t ElemSize = valueTypeSize(V.ElementType);
  uint64_t MinElem = ElemSize ? ElemSize
                     : V.ElementType == ValueType::String ? kMinStringBytes
                                                          : kMinArrayBytes;
  if (V.Count > remaining() / MinElem)
    return error(Start, absl::StrFormat("array of %d %s elements runs past the end of the file "
                                        "(%d bytes left)",
                                        V.Count, valueTypeName(V.ElementType), remaining()));
  if (ElemSize) {
    V.Raw = Data + Pos;
    Pos += V.Count * ElemSize;
    if (V.ElementType == ValueType::Bool)
      for (uint64_t I = 0; I < V.Count; ++I)
        if (V.Raw[I] > 1)
          return error(Pos - V.Count + I, "bool array element is neither 0 nor 1");
    return absl::OkStatus();
  }
  if (V.ElementType == ValueType::String) {
    V.Strings.reserve(V.Count);
    for (uint64_t I = 0; I < V.Count; ++I) {
      absl::StatusOr<std::string_view> S = readString("array string");
      if (!S.ok())
        return S.status();
      V.Strings.push_back(*S);
    }
    return absl::OkStatus();
  }
  V.Items.resize(V.Count);
  for (Value &Item : V.Items) {
    Item.Type = ValueType::Array;
    if (absl::Status S = readArray(Item, Depth + 1); !S.ok())
      return S;
  }
  return absl::OkStatus();
}

absl::Status Parser::readTensorInfo(TensorInfo &T) {
  uint64_t Start = Pos;
  absl::StatusOr<std::string_view> Name = readString("tensor name");
  if (!Name.ok())
    return Name.status();
  T.Name = *Name;
  absl::StatusOr<uint32_t> NDims = read<uint32_t>("tensor dimension count");
  if (!NDims.ok())
    return NDims.status();
  if (*NDims == 0 || *NDims > kMaxDims)
    return error(Start, absl::StrFormat("tensor '%s' has %d dimensions (1 to %d allowed)",
                                        T.Name, *NDims, kMaxDims));
  T.NumDims = *NDims;
  int64_t Elements = 1;
  for (unsigned I = 0; I < T.NumDims; ++I) {
    absl::StatusOr<uint64_t> D = read<uint64_t>("tensor dimension");
    if (!D.ok())
      return D.status();
    if (*D == 0)
      return error(Pos - 8, absl::StrFormat("tensor '%s' has a zero dimension (ne[%d] = 0)",
                                            T.Name, I));
    if (*D > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / Elements))
      return error(Pos - 8, absl::StrFormat("tensor '%s': element count overflows (ne[%d] = %d)",
                                            T.Name, I, *D));
    T.Dims[I] = static_cast<int64_t>(*D);
    Elements *= T.Dims[I];
  }
  uint64_t TypePos = Pos;
  absl::StatusOr<uint32_t> RawType = read<uint32_t>("tensor type");
  if (!RawType.ok())
    return RawType.status();
  std::optional<TensorTypeTraits> Traits = tensorTypeTraits(*RawType);
  if (!Traits)
    return error(TypePos, absl::StrFormat("tensor '%s' has unknown type %d", T.Name, *RawType));
  T.Type = static_cast<TensorType>(*RawType);
  if (T.Dims[0] % Traits->BlockSize)
    return error(TypePos, absl::StrFormat("tensor '%s': ne[0] = %d is not a multiple of the %s "
                                          "block size %d",
                                          T.Name, T.Dims[0], Traits->Name, Traits->BlockSize));
  // Elements fits in int64, so Elements / BlockSize * TypeSize fits in uint64.
  T.NumBytes = static_cast<uint64_t>(Elements) / Traits->BlockSize * Traits->TypeSize;
  absl::StatusOr<uint64_t> Offset = read<uint64_t>("tensor offset");
  if (!Offset.ok())
    return Offset.status();
  T.Offset = *Offset;
  return absl::OkStatus();
}

absl::Status Parser::layoutTensors(const std::vector<uint64_t> &InfoPos) {
  // The data section starts at the first aligned offset after the header.
  uint64_t A = F.Alignment;
  uint64_t DataStart = (Pos + A - 1) / A * A;
  if (DataStart > Size && !F.Tensors.empty())
    return error(Pos, "truncated: the file ends before its tensor data section");
  F.DataOffset = std::min(DataStart, Size);
  uint64_t DataSize = Size - F.DataOffset;
  for (size_t I = 0; I < F.Tensors.size(); ++I) {
    TensorInfo &T = F.Tensors[I];
    if (T.Offset % A)
      return error(InfoPos[I], absl::StrFormat("tensor '%s': data offset %d is not aligned to %d",
                                               T.Name, T.Offset, A));
    if (T.Offset > DataSize || T.NumBytes > DataSize - T.Offset)
      return error(InfoPos[I],
                   absl::StrFormat("tensor '%s': data [%d, +%d) lies outside the file's %d-byte "
                                   "data section",
                                   T.Name, T.Offset, T.NumBytes, DataSize));
    T.Data = Data + F.DataOffset + T.Offset;
  }
  std::vector<size_t> Order(F.Tensors.size());
  for (size_t I = 0; I < Order.size(); ++I)
    Order[I] = I;
  std::sort(Order.begin(), Order.end(),
            [&](size_t L, size_t R) { return F.Tensors[L].Offset < F.Tensors[R].Offset; });
  for (size_t I = 1; I < Order.size(); ++I) {
    const TensorInfo &Prev = F.Tensors[Order[I - 1]];
    const TensorInfo &Cur = F.Tensors[Order[I]];
    if (Prev.Offset + Prev.NumBytes > Cur.Offset)
      return error(InfoPos[Order[I]], absl::StrFormat("tensor '%s' overlaps tensor '%s'",
                                                      Cur.Name, Prev.Name));
  }
  return absl::OkStatus();
}

absl::Status Parser::run() {
  absl::StatusOr<uint32_t> Magic = read<uint32_t>("magic");
  if (!Magic.ok())
    return Magic.status();
  if (*Magic != kMagic)
    return error(0, absl::StrFormat("bad magic 0x%08x: not a GGUF file", *Magic));
  absl::StatusOr<uint32_t> Version = read<uint32_t>("version");
  if (!Version.ok())
    return Version.status();
  if (*Version != 2 && *Version != 3)
    return error(4, absl::StrFormat("unsupported GGUF version %d (2 and 3 are supported)",
                                    *Version));
  F.Version = *Version;
  absl::StatusOr<uint64_t> NTensors = read<uint64_t>("tensor count");
  if (!NTensors.ok())
    return NTensors.status();
  absl::StatusOr<uint64_t> NKV = read<uint64_t>("metadata count");
  if (!NKV.ok())
    return NKV.status();
  if (*NKV > remaining() / kMinKVBytes)
    return error(16, absl::StrFormat("metadata count %d cannot fit in the %d bytes left", *NKV,
                                     remaining()));
  if (*NTensors > remaining() / kMinTensorInfoBytes)
    return error(8, absl::StrFormat("tensor count %d cannot fit in the %d bytes left", *NTensors,
                                    remaining()));

  F.KVs.resize(*NKV);
  F.KeyIndex.reserve(*NKV);
  for (uint64_t I = 0; I < *NKV; ++I) {
    uint64_t Start = Pos;
    KeyValue &KV = F.KVs[I];
    absl::StatusOr<std::string_view> Key = readString("metadata key");
    if (!Key.ok())
      return Key.status();
    KV.Key = *Key;
    if (!F.KeyIndex.emplace(KV.Key, I).second)
      return error(Start, absl::StrFormat("duplicate metadata key '%s'", KV.Key));
    uint64_t TypePos = Pos;
    absl::StatusOr<uint32_t> RawType = read<uint32_t>("metadata value type");
    if (!RawType.ok())
      return RawType.status();
    if (!isValidValueType(*RawType))
      return error(TypePos, absl::StrFormat("metadata key '%s' has unknown value type %d",
                                            KV.Key, *RawType));
    if (absl::Status S = readValue(KV.Val, static_cast<ValueType>(*RawType), 0); !S.ok())
      return S;
  }

  if (const Value *A = F.find("general.alignment")) {
    if (A->Type != ValueType::U32)
      return error(0, absl::StrFormat("general.alignment has type %s, expected u32",
                                      valueTypeName(A->Type)));
    uint64_t Al = A->Bits;
    if (Al == 0 || (Al & (Al - 1)) != 0)
      return error(0, absl::StrFormat("general.alignment %d is not a power of two", Al));
    F.Alignment = static_cast<uint32_t>(Al);
  }

  F.Tensors.resize(*NTensors);
  F.TensorIndex.reserve(*NTensors);
  std::vector<uint64_t> InfoPos(*NTensors);
  for (uint64_t I = 0; I < *NTensors; ++I) {
    InfoPos[I] = Pos;
    if (absl::Status S = readTensorInfo(F.Tensors[I]); !S.ok())
      return S;
    if (!F.TensorIndex.emplace(F.Tensors[I].Name, I).second)
      return error(InfoPos[I], absl::StrFormat("duplicate tensor name '%s'", F.Tensors[I].Name));
  }
  return layoutTensors(InfoPos);
}

absl::StatusOr<std::unique_ptr<GGUFFile>> GGUFFile::parse(std::span<const uint8_t> Bytes,
                                                          std::string Name) {
  std::unique_ptr<GGUFFile> F(new GGUFFile());
  F->Bytes = Bytes;
  F->Name = std::move(Name);
  Parser P(*F);
  if (absl::Status S = P.run(); !S.ok())
    return S;
  return F;
}

absl::StatusOr<std::unique_ptr<GGUFFile>> GGUFFile::open(const std::string &Path) {
  absl::StatusOr<std::unique_ptr<MappedFile>> M = MappedFile::open(Path);
  if (!M.ok())
    return M.status();
  absl::StatusOr<std::unique_ptr<GGUFFile>> F = parse((*M)->bytes(), Path);
  if (!F.ok())
    return F.status();
  (*F)->Mapping = std::move(*M);
  return F;
}

//===----------------------------------------------------------------------===//
// Accessors
//===----------------------------------------------------------------------===//

bool Value::isInteger() const {
  switch (Type) {
  case ValueType::U8: case ValueType::I8: case ValueType::U16: case ValueType::I16:
  case ValueType::U32: case ValueType::I32: case ValueType::U64: case ValueType::I64:
    return true;
  default:
    return false;
  }
}

int64_t Value::asInt() const {
  if (Type == ValueType::U64 && Bits > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(Bits);
}

double Value::asDouble() const {
  if (Type == ValueType::F32) {
    float V;
    uint32_t B = static_cast<uint32_t>(Bits);
    std::memcpy(&V, &B, 4);
    return V;
  }
  if (Type == ValueType::F64) {
    double V;
    std::memcpy(&V, &Bits, 8);
    return V;
  }
  if (Type == ValueType::U64)
    return static_cast<double>(Bits);
  return static_cast<double>(asInt());
}

int64_t Value::intAt(uint64_t I) const {
  const uint8_t *P = Raw + I * valueTypeSize(ElementType);
  switch (ElementType) {
  case ValueType::U8: case ValueType::Bool: return loadLE<uint8_t>(P);
  case ValueType::I8: return loadLE<int8_t>(P);
  case ValueType::U16: return loadLE<uint16_t>(P);
  case ValueType::I16: return loadLE<int16_t>(P);
  case ValueType::U32: return loadLE<uint32_t>(P);
  case ValueType::I32: return loadLE<int32_t>(P);
  case ValueType::U64: return static_cast<int64_t>(loadLE<uint64_t>(P));
  case ValueType::I64: return loadLE<int64_t>(P);
  case ValueType::F32: return static_cast<int64_t>(loadLE<float>(P));
  case ValueType::F64: return static_cast<int64_t>(loadLE<double>(P));
  default: return 0;
  }
}

double Value::numberAt(uint64_t I) const {
  const uint8_t *P = Raw + I * valueTypeSize(ElementType);
  if (ElementType == ValueType::F32)
    return loadLE<float>(P);
  if (ElementType == ValueType::F64)
    return loadLE<double>(P);
  return static_cast<double>(intAt(I));
}

namespace {
std::string quoted(std::string_view S, size_t Max = 60) {
  std::string Out = "'";
  for (char C : S.substr(0, Max)) {
    if (C == '\n') Out += "\\n";
    else if (C == '\'') Out += "\\'";
    else if (static_cast<unsigned char>(C) < 0x20) Out += absl::StrFormat("\\x%02x", C);
    else Out += C;
  }
  Out += S.size() > Max ? "'..." : "'";
  return Out;
}

std::string scalarString(const Value &V) {
  switch (V.Type) {
  case ValueType::Bool: return V.Bits ? "true" : "false";
  case ValueType::F32: case ValueType::F64: return absl::StrFormat("%g", V.asDouble());
  case ValueType::U64: return absl::StrFormat("%d", V.Bits);
  case ValueType::String: return quoted(V.String);
  default: return absl::StrFormat("%d", V.asInt());
  }
}
} // namespace

std::string Value::toString(size_t MaxItems) const {
  if (!isArray())
    return scalarString(*this);
  std::vector<std::string> Parts;
  size_t N = std::min<uint64_t>(Count, MaxItems);
  for (size_t I = 0; I < N; ++I) {
    if (ElementType == ValueType::String)
      Parts.push_back(quoted(Strings[I], 20));
    else if (ElementType == ValueType::Array)
      Parts.push_back(Items[I].toString(MaxItems));
    else if (ElementType == ValueType::F32 || ElementType == ValueType::F64)
      Parts.push_back(absl::StrFormat("%g", numberAt(I)));
    else if (ElementType == ValueType::Bool)
      Parts.push_back(intAt(I) ? "true" : "false");
    else if (ElementType == ValueType::U64)
      Parts.push_back(absl::StrFormat("%d", static_cast<uint64_t>(intAt(I))));
    else
      Parts.push_back(absl::StrFormat("%d", intAt(I)));
  }
  std::string Out = absl::StrFormat("[%s", absl::StrJoin(Parts, ", "));
  if (Count > N)
    Out += absl::StrFormat(", ... (%d %s)", Count, valueTypeName(ElementType));
  return Out + "]";
}

std::string TensorInfo::shapeString() const {
  std::vector<int64_t> D(Dims.begin(), Dims.begin() + NumDims);
  return absl::StrFormat("[%s]", absl::StrJoin(D, ", "));
}

void GGUFFile::releaseTensorData() const {
  if (Mapping)
    Mapping->release(DataOffset, Bytes.size() - DataOffset);
}

void GGUFFile::releaseRange(const uint8_t *P, size_t N) const {
  if (Mapping && P >= Bytes.data() && P + N <= Bytes.data() + Bytes.size())
    Mapping->release(static_cast<size_t>(P - Bytes.data()), N);
}

const Value *GGUFFile::find(std::string_view Key) const {
  auto It = KeyIndex.find(Key);
  return It == KeyIndex.end() ? nullptr : &KVs[It->second].Val;
}

namespace {
absl::Status missingKey(const GGUFFile &F, std::string_view Key) {
  return absl::NotFoundError(absl::StrFormat("%s: missing metadata key '%s'", F.name(), Key));
}
absl::Status wrongType(const GGUFFile &F, std::string_view Key, const Value &V,
                       std::string_view Want) {
  return absl::InvalidArgumentError(absl::StrFormat("%s: metadata key '%s' has type %s, expected %s",
                                                    F.name(), Key, valueTypeName(V.Type), Want));
}

template <typename T>
absl::StatusOr<T> getInteger(const GGUFFile &F, std::string_view Key, std::string_view Want) {
  const Value *V = F.find(Key);
  if (!V)
    return missingKey(F, Key);
  if (!V->isInteger())
    return wrongType(F, Key, *V, Want);
  bool Negative = V->Type != ValueType::U64 && V->asInt() < 0;
  if (V->Type == ValueType::U64 ? V->Bits > static_cast<uint64_t>(std::numeric_limits<T>::max())
      : Negative             ? V->asInt() < static_cast<int64_t>(std::numeric_limits<T>::min())
                 : static_cast<uint64_t>(V->asInt()) > static_cast<uint64_t>(std::numeric_limits<T>::max()))
    return absl::OutOfRangeError(absl::StrFormat("%s: metadata key '%s' = %s does not fit in %s",
                                                 F.name(), Key, V->toString(), Want));
  return V->Type == ValueType::U64 ? static_cast<T>(V->Bits) : static_cast<T>(V->asInt());
}
} // namespace

absl::StatusOr<uint32_t> GGUFFile::getU32(std::string_view Key) const {
  return getInteger<uint32_t>(*this, Key, "u32");
}
absl::StatusOr<uint64_t> GGUFFile::getU64(std::string_view Key) const {
  return getInteger<uint64_t>(*this, Key, "u64");
}
absl::StatusOr<int32_t> GGUFFile::getI32(std::string_view Key) const {
  return getInteger<int32_t>(*this, Key, "i32");
}

absl::StatusOr<float> GGUFFile::getF32(std::string_view Key) const {
  const Value *V = find(Key);
  if (!V)
    return missingKey(*this, Key);
  if (!V->isFloat())
    return wrongType(*this, Key, *V, "f32");
  return static_cast<float>(V->asDouble());
}

absl::StatusOr<bool> GGUFFile::getBool(std::string_view Key) const {
  const Value *V = find(Key);
  if (!V)
    return missingKey(*this, Key);
  if (V->Type != ValueType::Bool)
    return wrongType(*this, Key, *V, "bool");
  return V->Bits != 0;
}

absl::StatusOr<std::string_view> GGUFFile::getString(std::string_view Key) const {
  const Value *V = find(Key);
  if (!V)
    return missingKey(*this, Key);
  if (V->Type != ValueType::String)
    return wrongType(*this, Key, *V, "str");
  return V->String;
}

absl::StatusOr<const Value *> GGUFFile::getArray(std::string_view Key, ValueType Element) const {
  const Value *V = find(Key);
  if (!V)
    return missingKey(*this, Key);
  if (!V->isArray() || V->ElementType != Element)
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: metadata key '%s' has type %s%s, expected arr[%s]", name(), Key,
        valueTypeName(V->Type),
        V->isArray() ? absl::StrFormat("[%s]", valueTypeName(V->ElementType)) : "",
        valueTypeName(Element)));
  return V;
}

const TensorInfo *GGUFFile::findTensor(std::string_view TensorName) const {
  auto It = TensorIndex.find(TensorName);
  return It == TensorIndex.end() ? nullptr : &Tensors[It->second];
}

absl::StatusOr<const TensorInfo *> GGUFFile::getTensor(std::string_view TensorName) const {
  if (const TensorInfo *T = findTensor(TensorName))
    return T;
  return absl::NotFoundError(absl::StrFormat("%s: missing tensor '%s'", Name, TensorName));
}

} // namespace lumen::gguf
