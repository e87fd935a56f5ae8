// A shared owner of an object that counts its own references: no control
// block beside the object and one pointer per owner, where std::shared_ptr
// takes a 16-byte control block and two pointers. The verifier's cache holds
// a million entries through it (docs/benchmarks.md "Cache entry size").
//
// T provides, as const members:
//   void Ref() const;    // one reference more
//   void Unref() const;  // one fewer; the last one destroys the object
// An object starts with no reference; the first IntrusivePtr to it takes
// one.
//
// Thread-safety: as std::shared_ptr's. Copies of one pointer may be made,
// used and destroyed on different threads at once (T's count must be
// atomic); one IntrusivePtr object is not written from two threads at once.
#ifndef LUMOKEYS_SERVER_SERVICE_INTRUSIVE_PTR_H_
#define LUMOKEYS_SERVER_SERVICE_INTRUSIVE_PTR_H_

#include <cstddef>
#include <utility>

namespace lumo::service {

template <typename T>
class IntrusivePtr {
 public:
  IntrusivePtr() = default;
  IntrusivePtr(std::nullptr_t) {}  // NOLINT: as a null shared_ptr
  // Takes a reference to `p` (may be null).
  explicit IntrusivePtr(T* p) : p_(p) {
    if (p_ != nullptr) p_->Ref();
  }
  IntrusivePtr(const IntrusivePtr& o) : IntrusivePtr(o.p_) {}
  IntrusivePtr(IntrusivePtr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  IntrusivePtr& operator=(IntrusivePtr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~IntrusivePtr() {
    if (p_ != nullptr) p_->Unref();
  }

  T* get() const { return p_; }
  T& operator*() const { return *p_; }
  T* operator->() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }
  bool operator==(std::nullptr_t) const { return p_ == nullptr; }
  bool operator!=(std::nullptr_t) const { return p_ != nullptr; }

 private:
  T* p_ = nullptr;
};

}  // namespace lumo::service

#endif  // LUMOKEYS_SERVER_SERVICE_INTRUSIVE_PTR_H_
