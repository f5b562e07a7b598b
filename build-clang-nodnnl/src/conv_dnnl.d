build-clang-nodnnl/src/conv_dnnl.o: src/conv_dnnl.c
