# Cross build for AArch64 Linux with Debian's cross toolchain, tests run under qemu-user.
#   apt-get install -y --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
#   (+ g++-aarch64-linux-gnu for the ggml cross-check: -DCHESS_GGML_SOURCE=...)
#   cmake -S native -B build-a64 --toolchain native/cmake/aarch64-linux-gnu.cmake -DCHESS_TEST_EXPECT_ISA=neon
#   cmake --build build-a64 && ctest --test-dir build-a64 --output-on-failure
# ctest prefixes every test with CMAKE_CROSSCOMPILING_EMULATOR. The emulated CPU is
# CHESS_QEMU_CPU (environment variable or -D; default "max": every extension qemu
# implements, SDOT included); e.g. cortex-a53 is a plain ARMv8.0-A core.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CHESS_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${CHESS_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${CHESS_CROSS_TRIPLE}-g++)
set(CHESS_CROSS_SYSROOT /usr/${CHESS_CROSS_TRIPLE})

set(CMAKE_FIND_ROOT_PATH ${CHESS_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

if (NOT CHESS_QEMU_CPU)
    if (DEFINED ENV{CHESS_QEMU_CPU} AND NOT "$ENV{CHESS_QEMU_CPU}" STREQUAL "")
        set(CHESS_QEMU_CPU "$ENV{CHESS_QEMU_CPU}")
    else()
        set(CHESS_QEMU_CPU max)
    endif()
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L ${CHESS_CROSS_SYSROOT} -cpu ${CHESS_QEMU_CPU})
