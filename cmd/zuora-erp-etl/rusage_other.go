//go:build !unix

package main

import (
	"os"
	"time"
)

// procUsage is what the system counted of a child process that ended.
type procUsage struct {
	user, sys time.Duration
	maxRSS    int64 // bytes; unknown here
}

func usageOf(ps *os.ProcessState) procUsage {
	if ps == nil {
		return procUsage{}
	}
	return procUsage{user: ps.UserTime(), sys: ps.SystemTime()}
}
