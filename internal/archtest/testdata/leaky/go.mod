module strata.dev/strata

go 1.22

require example.com/kvstore v0.0.0

replace example.com/kvstore => ./kvstore
