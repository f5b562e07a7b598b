/* Library version and the optional features compiled in. */
#ifndef UAKD_VERSION_H
#define UAKD_VERSION_H

#define UAKD_VERSION_STRING "0.1.0"

const char *uakd_version(void);
/* e.g. "openmp=on onednn=on" */
const char *uakd_build_features(void);

#endif
