// DecodeFrameRecords: the frames of a batch of serialized tf.SequenceExamples, copied in one
// pass from the records' bytes into one padded uint8 array per feature (issue #33; the Python
// side and the reasons are in trainer_module/frame_records.py). Built into the environment
// image by env.Dockerfile against the TensorFlow of requirements.lock.
//
// The wire format (https://protobuf.dev/programming-guides/encoding/ and
// tensorflow/core/example/example.proto, feature.proto):
//   SequenceExample { Features context = 1; FeatureLists feature_lists = 2; }
//   FeatureLists { map<string, FeatureList> feature_list = 1; }  // entry: key 1, value 2
//   FeatureList { repeated Feature feature = 1; }
//   Feature { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
//                          Int64List int64_list = 3; } }
//   BytesList { repeated bytes value = 1; }
// Parsed as protobuf merges: a map key given twice keeps its last entry, a message field given
// twice is the concatenation of its occurrences, unknown fields are skipped.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace yt8m_tfx {
namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::shape_inference::InferenceContext;

enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };
// Field numbers of the messages above.
constexpr uint32_t kFeatureLists = 2, kMapEntry = 1, kMapKey = 1, kMapValue = 2;
constexpr uint32_t kFeature = 1, kBytesList = 1, kBytesValue = 1;

struct Span {
  const uint8_t* begin;
  const uint8_t* end;
};

// The fields of one message, in order. Next() is false at the end or on malformed bytes
// (then ok() is false too).
class Fields {
 public:
  explicit Fields(Span message) : at_(message.begin), end_(message.end) {}

  bool Next(uint32_t* field, int* wire_type, Span* value) {
    if (at_ == end_) return false;
    uint64_t key, length;
    if (!Varint(&key)) return Fail();
    *field = static_cast<uint32_t>(key >> 3);
    *wire_type = static_cast<int>(key & 7);
    switch (*wire_type) {
      case kVarint:
        return Varint(&length) || Fail();
      case kFixed64:
        return Skip(8);
      case kFixed32:
        return Skip(4);
      case kLengthDelimited:
        if (!Varint(&length) || length > static_cast<uint64_t>(end_ - at_)) return Fail();
        *value = {at_, at_ + length};
        at_ += length;
        return true;
      default:  // groups: not in these messages
        return Fail();
    }
  }

  bool ok() const { return ok_; }

 private:
  bool Varint(uint64_t* value) {
    *value = 0;
    for (int shift = 0; shift < 64 && at_ < end_; shift += 7) {
      const uint8_t byte = *at_++;
      *value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (byte < 0x80) return true;
    }
    return false;
  }
  bool Skip(int bytes) {
    if (end_ - at_ < bytes) return Fail();
    at_ += bytes;
    return true;
  }
  bool Fail() {
    ok_ = false;
    return false;
  }

  const uint8_t* at_;
  const uint8_t* end_;
  bool ok_ = true;
};

// The length-delimited occurrences of `wanted` in a message; false when it is malformed.
bool Occurrences(Span message, uint32_t wanted, std::vector<Span>* out) {
  Fields fields(message);
  uint32_t field;
  int wire_type;
  Span value;
  while (fields.Next(&field, &wire_type, &value)) {
    if (field == wanted && wire_type == kLengthDelimited) out->push_back(value);
  }
  return fields.ok();
}

class DecodeFrameRecordsOp : public OpKernel {
 public:
  explicit DecodeFrameRecordsOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("feature_names", &names_));
    OP_REQUIRES_OK(context, context->GetAttr("feature_sizes", &sizes_));
    OP_REQUIRES_OK(context, context->GetAttr("max_frames", &max_frames_));
    int64_t num_features;
    OP_REQUIRES_OK(context, context->GetAttr("num_features", &num_features));
    OP_REQUIRES(context,
                names_.size() == sizes_.size() &&
                    sizes_.size() == static_cast<size_t>(num_features),
                absl::InvalidArgumentError(
                    "feature_names, feature_sizes and num_features must agree"));
  }

  void Compute(OpKernelContext* context) override {
    const auto records = context->input(0).flat<tensorflow::tstring>();
    const int64_t batch = records.size();
    const size_t features = names_.size();
    // frames[video][feature]: where each frame's bytes start.
    std::vector<std::vector<std::vector<const uint8_t*>>> frames(batch);
    int64_t frames_axis = 0;
    for (int64_t video = 0; video < batch; ++video) {
      const auto* bytes = reinterpret_cast<const uint8_t*>(records(video).data());
      frames[video].resize(features);
      OP_REQUIRES_OK(context, FramesOf({bytes, bytes + records(video).size()}, video,
                                       &frames[video]));
      frames_axis = std::max<int64_t>(
          frames_axis, std::min<int64_t>(frames[video][0].size(), max_frames_));
    }
    tensorflow::OpOutputList codes;
    OP_REQUIRES_OK(context, context->output_list("codes", &codes));
    Tensor* num_frames = nullptr;
    OP_REQUIRES_OK(context, context->allocate_output("num_frames", TensorShape({batch}),
                                                     &num_frames));
    auto lengths = num_frames->flat<int32_t>();
    for (int64_t video = 0; video < batch; ++video) {
      lengths(video) = std::min<int64_t>(frames[video][0].size(), max_frames_);
    }
    for (size_t feature = 0; feature < features; ++feature) {
      const int64_t size = sizes_[feature];
      Tensor* out = nullptr;
      OP_REQUIRES_OK(context, codes.allocate(feature, TensorShape({batch, frames_axis, size}),
                                             &out));
      uint8_t* row = out->flat<uint8_t>().data();
      for (int64_t video = 0; video < batch; ++video) {
        const auto& runs = frames[video][feature];
        const int64_t length = lengths(video);
        for (int64_t t = 0; t < frames_axis; ++t, row += size) {
          // Past its last frame a video repeats it, as reader.parse_frame_examples does.
          if (length == 0) {
            std::memset(row, 0, size);
          } else {
            std::memcpy(row, runs[std::min(t, length - 1)], size);
          }
        }
      }
    }
  }

 private:
  absl::Status Malformed(int64_t video) const {
    return absl::InvalidArgumentError(absl::StrCat(
        "record ", video, " of the batch is not a serialized tf.SequenceExample"));
  }

  // Every frame of each wanted feature of one record.
  absl::Status FramesOf(Span record, int64_t video,
                        std::vector<std::vector<const uint8_t*>>* out) const {
    std::vector<Span> feature_lists, entries;
    if (!Occurrences(record, kFeatureLists, &feature_lists)) return Malformed(video);
    for (const Span& lists : feature_lists) {
      if (!Occurrences(lists, kMapEntry, &entries)) return Malformed(video);
    }
    std::vector<std::vector<Span>> lists_of(names_.size());
    for (const Span& entry : entries) {
      std::vector<Span> keys, values;
      if (!Occurrences(entry, kMapKey, &keys) || !Occurrences(entry, kMapValue, &values)) {
        return Malformed(video);
      }
      const std::string_view key =
          keys.empty() ? std::string_view()
                       : std::string_view(reinterpret_cast<const char*>(keys.back().begin),
                                          keys.back().end - keys.back().begin);
      for (size_t feature = 0; feature < names_.size(); ++feature) {
        if (key == names_[feature]) lists_of[feature] = values;
      }
    }
    for (size_t feature = 0; feature < names_.size(); ++feature) {
      absl::Status status = FramesOfList(lists_of[feature], feature, video, &(*out)[feature]);
      if (!status.ok()) return status;
      if ((*out)[feature].size() != (*out)[0].size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "frame feature '", names_[feature], "': each video needs as many frames of it as of '",
            names_[0], "'"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status FramesOfList(const std::vector<Span>& lists, size_t feature, int64_t video,
                            std::vector<const uint8_t*>* out) const {
    std::vector<Span> list_features, bytes_lists, values;
    for (const Span& list : lists) {
      list_features.clear();
      if (!Occurrences(list, kFeature, &list_features)) return Malformed(video);
      for (const Span& frame : list_features) {
        bytes_lists.clear();
        values.clear();
        if (!Occurrences(frame, kBytesList, &bytes_lists)) return Malformed(video);
        for (const Span& bytes_list : bytes_lists) {
          if (!Occurrences(bytes_list, kBytesValue, &values)) return Malformed(video);
        }
        if (values.size() != 1) {
          return absl::InvalidArgumentError(absl::StrCat(
              "frame feature '", names_[feature], "': each frame must be one byte string, ",
              "record ", video, " has a frame of ", values.size()));
        }
        if (values[0].end - values[0].begin != sizes_[feature]) {
          return absl::InvalidArgumentError(absl::StrCat(
              "frame feature '", names_[feature], "': each frame must be ", sizes_[feature],
              " bytes"));
        }
        out->push_back(values[0].begin);
      }
    }
    return absl::OkStatus();
  }

  std::vector<std::string> names_;
  std::vector<int64_t> sizes_;
  int64_t max_frames_;
};

REGISTER_OP("DecodeFrameRecords")
    .Input("serialized: string")
    .Attr("feature_names: list(string) >= 1")
    .Attr("feature_sizes: list(int) >= 1")
    .Attr("num_features: int >= 1")
    .Attr("max_frames: int >= 1")
    .Output("codes: num_features * uint8")
    .Output("num_frames: int32")
    .SetShapeFn([](InferenceContext* c) {
      std::vector<int64_t> sizes;
      TF_RETURN_IF_ERROR(c->GetAttr("feature_sizes", &sizes));
      const auto batch = c->Dim(c->input(0), 0);
      for (size_t i = 0; i < sizes.size(); ++i) {
        c->set_output(i, c->MakeShape({batch, c->UnknownDim(), c->MakeDim(sizes[i])}));
      }
      c->set_output(sizes.size(), c->Vector(batch));
      return absl::OkStatus();
    })
    .Doc("The uint8 frame codes [batch, min(longest video, max_frames), size] of each named "
         "feature of a batch of serialized tf.SequenceExamples, and num_frames [batch].");

REGISTER_KERNEL_BUILDER(Name("DecodeFrameRecords").Device(::tensorflow::DEVICE_CPU),
                        DecodeFrameRecordsOp);

}  // namespace
}  // namespace yt8m_tfx
