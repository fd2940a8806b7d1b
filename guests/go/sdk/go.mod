module sous

go 1.24
