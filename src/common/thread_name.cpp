#include "capi_relay/common/thread_name.hpp"

#include <pthread.h>

#include <cstring>

namespace capi_relay {

void set_thread_name(const char* name) {
  char buf[16];
  std::strncpy(buf, name, sizeof buf - 1);
  buf[sizeof buf - 1] = '\0';
  pthread_setname_np(pthread_self(), buf);  // best effort: a failure changes nothing else
}

}  // namespace capi_relay
