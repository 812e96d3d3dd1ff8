package controllers

// maxEventNote is the longest note events.k8s.io/v1 accepts.
const maxEventNote = 1024
