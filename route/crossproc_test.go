package route_test

const childEnv = "SHMRING_ROUTE_TEST_CHILD"

func runChild(role string) error { return nil }
