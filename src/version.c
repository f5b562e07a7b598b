/* Version string and the list of optional features this build was compiled with. */
#include "uakd/version.h"

const char *uakd_version(void) { return UAKD_VERSION_STRING; }

const char *uakd_build_features(void) {
    return "openmp="
#ifdef _OPENMP
           "on"
#else
           "off"
#endif
           " onednn="
#ifdef UAKD_HAVE_DNNL
           "on"
#else
           "off"
#endif
        ;
}
