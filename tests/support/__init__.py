"""Support code for the tests: loopback servers, throwaway services, helper backends."""
