package testcluster

// ForcedOnly exposes forcedOnly to the external tests.
var ForcedOnly = forcedOnly
