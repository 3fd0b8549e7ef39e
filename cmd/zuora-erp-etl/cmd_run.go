package main

import "context"

func cmdRun(ctx context.Context, args []string, e *env) int {
	fs := newFlagSet("run", "run [--since T] [--until T] [--window 1h] [flags]\n\nProcesses every due window from the saved high-water mark: windows whose load is unfinished first,\nthen new ones up to now minus the settle lag. Safe to repeat at any time.")
	var s settings
	s.register(fs, e)
	s.registerRange(fs)
	s.registerLease(fs, e)
	if code, ok := parse(fs, args, e); !ok {
		return code
	}
	return runPipeline(ctx, &s, e)
}

func runPipeline(ctx context.Context, s *settings, e *env) int {
	if err := s.finish(e); err != nil {
		return fail(e, err)
	}
	defer s.close()
	return runOnce(ctx, s.cfg, e)
}
