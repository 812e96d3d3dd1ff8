package testcluster

// ForcedOnly exposes forcedOnly to the external tests.
var ForcedOnly = forcedOnly

// LastWords exposes lastWords to the external tests.
var LastWords = lastWords
