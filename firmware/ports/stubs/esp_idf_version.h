/* Stand-in (type-checking only; see README.md). */
#pragma once
#define ESP_IDF_VERSION_MAJOR 4
