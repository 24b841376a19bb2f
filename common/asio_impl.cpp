// Compiles Asio (and its SSL support) once for the whole project, so that other
// translation units only include declarations (BOOST_ASIO_SEPARATE_COMPILATION).
// Nothing else belongs in this file.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
