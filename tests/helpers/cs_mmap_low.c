/*
 * Maps one page at address 0 (below vm.mmap_min_addr), N times: each mmap() makes the kernel
 * check CAP_SYS_RAWIO (cap_mmap_addr), an audited need. Debian's 6.1 and 6.12
 * kernels inline that check's cap_capable call, which fentry and kprobes on
 * cap_capable cannot see. Used by the runtime tests.
 * Usage: cs_mmap_low [N]  -> exit 0 if every mapping succeeded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1;
	void *low = NULL; /* below any vm.mmap_min_addr but 0 */

	for (long i = 0; i < n; i++) {
		void *p = mmap(low, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

		if (p == MAP_FAILED) {
			perror("cs_mmap_low: mmap at address 0");
			return 1;
		}
		munmap(p, 4096);
	}
	return 0;
}
