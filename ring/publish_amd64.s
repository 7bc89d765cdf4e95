//go:build amd64 && !race

#include "textflag.h"

// func publish(w *atomic.Uint64, v uint64)
TEXT ·publish(SB), NOSPLIT, $0-16
	MOVQ w+0(FP), AX
	MOVQ v+8(FP), BX
	MOVQ BX, 0(AX)
	RET

// func add2(a *atomic.Uint64, da uint64, b *atomic.Uint64, db uint64)
TEXT ·add2(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), AX
	MOVQ da+8(FP), CX
	MOVQ b+16(FP), BX
	MOVQ db+24(FP), DX
	ADDQ CX, 0(AX)
	ADDQ DX, 0(BX)
	RET
