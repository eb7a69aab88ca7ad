//===- lumen/Export.h - Symbol visibility of the public API ------*- C++ -*-===//
//
// Lumen's libraries are built with -fvisibility=hidden; what a header marks
// LUMEN_API is the public API, and the only thing a shared build exports.
//
//===----------------------------------------------------------------------===//
#ifndef LUMEN_EXPORT_H
#define LUMEN_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define LUMEN_API __attribute__((visibility("default")))
#else
#define LUMEN_API
#endif

#endif
