/* Stand-in (type-checking only; see README.md). */
#pragma once
