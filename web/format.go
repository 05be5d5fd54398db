package web

import "strconv"

func formatCount(n int64) string { return strconv.FormatInt(n, 10) }
