package sample

// InTest is not counted: test files are not the package's API.
func InTest() {}
