build-noomp/bench/bench_conv: bench/bench_conv.c include/uakd/backend.h \
 include/uakd/status.h include/uakd/conv.h
include/uakd/backend.h:
include/uakd/status.h:
include/uakd/conv.h:
