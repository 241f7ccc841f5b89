//go:build linux && (mips || mipsle || mips64 || mips64le)

package pid1

// kernelSigsetSize is the size of the kernel's sigset_t (128 signals on
// MIPS), the last argument of rt_sigaction(2).
const kernelSigsetSize = 16
