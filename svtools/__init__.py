"""daemontools 0.76 in Python: svscan, supervise, svc, svok, svstat and friends."""
