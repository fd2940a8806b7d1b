module static-site

go 1.24
