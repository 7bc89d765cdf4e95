package sample

// OnLinux is counted on Linux only (the build context decides).
const OnLinux = true
