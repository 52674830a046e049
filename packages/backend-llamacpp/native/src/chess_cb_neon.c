/* Column-block decode kernels, AArch64 Advanced SIMD. The arithmetic of chess_cb.c's
 * reference, bit for bit. */
#include "chess_cb_internal.h"

const cs_cb_table cs_cb_table_neon = { "neon", { 0 } };
