// Compiles Beast once for the whole project (BOOST_BEAST_SEPARATE_COMPILATION),
// as asio_impl.cpp does for Asio, including the in-memory test stream the unit
// tests use. Nothing else belongs in this file.
#include <boost/beast/src.hpp>
