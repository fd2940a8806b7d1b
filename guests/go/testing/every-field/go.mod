module everyfield

go 1.24
