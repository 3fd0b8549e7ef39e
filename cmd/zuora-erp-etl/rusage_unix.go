//go:build unix

package main

import (
	"os"
	"runtime"
	"syscall"
	"time"
)

// procUsage is what the kernel counted of a child process that ended.
type procUsage struct {
	user, sys time.Duration
	maxRSS    int64 // bytes
}

func usageOf(ps *os.ProcessState) procUsage {
	if ps == nil {
		return procUsage{}
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return procUsage{}
	}
	rss := int64(ru.Maxrss) * 1024 // kilobytes on Linux and the BSDs
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		rss = int64(ru.Maxrss) // bytes
	}
	return procUsage{user: time.Duration(ru.Utime.Nano()), sys: time.Duration(ru.Stime.Nano()), maxRSS: rss}
}
