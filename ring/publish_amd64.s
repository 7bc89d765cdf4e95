//go:build amd64 && !race

#include "textflag.h"

// func publish(w *atomic.Uint64, v uint64)
TEXT ·publish(SB), NOSPLIT, $0-16
	MOVQ w+0(FP), AX
	MOVQ v+8(FP), BX
	MOVQ BX, 0(AX)
	RET
