# Builds bpf/<name>.bpf.c with clang for the BPF target and turns the object
# into a libbpf skeleton header (<name>.skel.h) with `bpftool gen skeleton`.
# The objects are CO-RE: the committed bpf/vmlinux.h stands in for kernel
# headers, and the running kernel's BTF relocates field accesses at load time.
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(CAPSCOPE_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(CAPSCOPE_BPF_ARCH arm64)
else()
  message(FATAL_ERROR "capscope: no BPF target for ${CMAKE_SYSTEM_PROCESSOR}")
endif()

set(CAPSCOPE_SKEL_DIR ${CMAKE_BINARY_DIR}/skel)
file(MAKE_DIRECTORY ${CAPSCOPE_SKEL_DIR})
set(CAPSCOPE_SKELETONS "")

function(capscope_bpf_skeleton name)
  set(src ${PROJECT_SOURCE_DIR}/bpf/${name}.bpf.c)
  set(obj ${CAPSCOPE_SKEL_DIR}/${name}.bpf.o)
  set(skel ${CAPSCOPE_SKEL_DIR}/${name}.skel.h)
  file(GLOB bpf_headers ${PROJECT_SOURCE_DIR}/bpf/*.h)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPF_CLANG} -g -O2 -Wall -Werror -target bpf -mcpu=v3 -D__TARGET_ARCH_${CAPSCOPE_BPF_ARCH}
            -I${PROJECT_SOURCE_DIR}/bpf -c ${src} -o ${obj}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${src} ${bpf_headers}
    COMMENT "BPF ${name}.bpf.c -> ${name}.skel.h"
    VERBATIM)
  list(APPEND CAPSCOPE_SKELETONS ${skel})
  set(CAPSCOPE_SKELETONS ${CAPSCOPE_SKELETONS} PARENT_SCOPE)
endfunction()
